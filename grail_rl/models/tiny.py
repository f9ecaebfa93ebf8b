"""Build a tiny causal LM and its tokenizer offline, in about two seconds, for the demo and the tests.

No hub is needed: a byte-level BPE is trained on text generated here from the words grail-rl prompts use,
wrapped as a ``PreTrainedTokenizerFast`` with a ChatML chat template, and paired with a randomly
initialised Llama model (hidden 64, 2 layers, ~100k parameters). The Llama architecture is used because
transformers reloads a ``qwen2`` folder as ``Qwen2Tokenizer``, whose rebuilt pre-tokenizer encodes a
plain byte-level BPE differently after reload (see STACK.md); the saved ``tokenizer_config.json`` also
names ``PreTrainedTokenizerFast`` so no model-specific tokenizer class rewrites the pipeline.

:func:`ensure_tiny_model` builds into a temporary sibling folder and renames it into place
(:func:`build_atomically`, also used by the demo's format warm-up in :mod:`grail_rl.models.warmup`), so a
folder that exists is always complete and concurrent builders do not see half-written files.

    python -m grail_rl.models.tiny OUT_DIR
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from grail_rl.errors import GrailError

MARKER = "grail_tiny_model.json"

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Words the rendered prompts and answers use most; the BPE learns merges for them so prompts stay short.
_WORDS = (
    "viewer watching currently recently watched newest last options questions survey highlights initial "
    "viewpoint which option number will the watch next after this recommendation opinion on gun control "
    "minimum wage increase decrease stay same no_change from views likes comments engagement long complete "
    "year old white black hispanic asian woman man republican democrat independent conservative liberal "
    "moderate college educated watches youtube daily weekly monthly rarely several times a day supports "
    "stricter laws opposes party identification is ideology identifies as enthusiastic about guns video "
    "news channel think answer you are choosing exactly one item list of for specific output format strict "
    "always include both tags in order first then only chosen number do not name id any extra text "
    "system user assistant"
).split()
_TAGS = ["<think>", "</think>", "<answer>", "</answer>", "<opinion>", "</opinion>"]


@dataclass(frozen=True)
class TinySpec:
    """What the tiny model looks like; stored beside it so a cached folder is rebuilt when this changes."""

    vocab_size: int = 1024
    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 4096
    seed: int = 0
    version: int = 2  # 2: the reply tags are single tokens


def corpus_lines(n: int = 600, seed: int = 0) -> list[str]:
    """Deterministic training text for the BPE: prompt-like lines, numbers and answer tags."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        words = rng.choices(_WORDS, k=rng.randint(6, 16))
        if i % 3 == 0:
            words.insert(0, f"{rng.randint(1, 5)}.")
        if i % 5 == 0:
            words.append(f"({rng.randint(1, 999):,}s long) views {rng.randint(1, 10**6):,}")
        if i % 4 == 0:
            words.append(
                f"<think>\n{' '.join(rng.choices(_WORDS, k=4))}\n</think>\n<answer>\n{rng.randint(1, 5)}\n</answer>"
            )
        lines.append(" ".join(words).upper() if i % 7 == 0 else " ".join(words))
    return lines


def build_tokenizer(spec: TinySpec):
    """A byte-level BPE tokenizer with ChatML special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus_lines(seed=spec.seed) + _TAGS * 20, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        model_max_length=spec.max_position_embeddings,
    )
    # The reply tags as whole (non-special, so never stripped when decoding) tokens: a reply is then ~14
    # distinct tokens instead of ~20 runs of "<", "think", ">", which a 2-layer model learns far faster.
    tokenizer.add_tokens(_TAGS)
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def build_model(spec: TinySpec, tokenizer):
    """A randomly initialised Llama model sized by ``spec``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(spec.seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        max_position_embeddings=spec.max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def build_tiny_model(out_dir: str | Path, spec: TinySpec | None = None) -> Path:
    """Build and save the tiny model and tokenizer into ``out_dir`` (overwriting what is there)."""
    spec = spec or TinySpec()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(spec)
    model = build_model(spec, tokenizer)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    pin_tokenizer_class(out)
    (out / MARKER).write_text(json.dumps(asdict(spec), indent=2) + "\n", encoding="utf-8")
    return out


def pin_tokenizer_class(out: Path) -> None:
    # Reload as the generic fast tokenizer: a model-specific class may rebuild the pre-tokenizer.
    path = out / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config["chat_template"] = CHATML_TEMPLATE
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def is_built(path: str | Path, spec: TinySpec | None = None) -> bool:
    marker = Path(path) / MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text(encoding="utf-8")) == asdict(spec or TinySpec())
    except (OSError, ValueError):
        return False


def ensure_tiny_model(path: str | Path, spec: TinySpec | None = None) -> Path:
    """Return ``path``, building the tiny model there first unless an identical one is already built."""
    return build_atomically(
        Path(path), lambda staging: build_tiny_model(staging, spec), lambda: is_built(path, spec)
    )


def build_atomically(path: Path, build: Callable[[Path], object], done: Callable[[], bool]) -> Path:
    """Return ``path`` when ``done()``; else run ``build(staging)`` in a sibling folder and rename it into place.

    A folder at ``path`` is therefore always complete; when a concurrent builder wins the rename race,
    its (identical) result is kept.
    """
    if done():
        return path
    if path.exists() and not (path.is_dir() and (path / MARKER).is_file()):
        # Only a folder grail-rl built (it carries the marker) is ever replaced: anything else is the user's.
        raise GrailError(
            f"{path} exists and is not a tiny model grail-rl built; the demo builds its model there and would "
            "replace it. Give the demo a cache folder of its own (--cache DIR) or remove it yourself"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.building-", dir=path.parent))
    try:
        build(staging)
        if path.exists():
            # An outdated build (or a folder left by an older version): replace it.
            shutil.rmtree(path)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if done():  # another process finished the same build first
            return path
        raise
    return path


if __name__ == "__main__":
    target = ensure_tiny_model(sys.argv[1] if len(sys.argv) > 1 else "tiny-model")
    print(target)
