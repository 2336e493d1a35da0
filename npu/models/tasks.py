"""Offline workloads for tiny masked-diffusion models: exact-match puzzles and a text corpus.

Nothing here downloads anything. The puzzles are generated from a seeded torch.Generator; the text
is Python's own documentation (module `pydoc_data.topics`, about 465k characters).

Every workload offers the same small interface to the trainer:
    vocab, mask_id, sequence_length and
    sample_training_batch(n, generator) -> (tokens (n, sequence_length), maskable (sequence_length,) bool)
where `maskable` marks the positions the diffusion loss may mask (the answer of a puzzle, the
whole window of text). Puzzles also offer prompt_length, answer_length, sample, exact_match and
decode for exact-match evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

MASK_TOKEN = "[MASK]"
UNKNOWN_TOKEN = "[UNK]"
DIGITS = list("0123456789")


def _check_positive_int(task: str, key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"task {task!r}: {key} must be a positive integer, got {value!r}")
    return value


class _Puzzle:
    """Shared parts of prompt -> answer puzzles scored by exact match.

    Subclasses set vocab, prompt_length and answer_length and define
    sample(n, generator) -> (prompts (n, prompt_length), answers (n, answer_length)).
    """

    name: str
    vocab: list[str]
    prompt_length: int
    answer_length: int

    @property
    def mask_id(self) -> int:
        return self.vocab.index(MASK_TOKEN)

    @property
    def sequence_length(self) -> int:
        return self.prompt_length + self.answer_length

    def sample_training_batch(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt followed by answer; only the answer may be masked (LLaDA SFT style)."""
        prompts, answers = self.sample(n, generator)
        maskable = torch.zeros(self.sequence_length, dtype=torch.bool)
        maskable[self.prompt_length :] = True
        return torch.cat([prompts, answers], dim=1), maskable

    def exact_match(self, pred_answers: torch.Tensor, answers: torch.Tensor) -> float:
        """Fraction of rows whose every answer token is right."""
        if pred_answers.shape != answers.shape:
            raise ValueError(
                f"task {self.name!r}: predicted answers have shape {tuple(pred_answers.shape)}, "
                f"reference answers {tuple(answers.shape)}"
            )
        if answers.shape[0] == 0:
            raise ValueError(f"task {self.name!r}: exact_match needs at least one row")
        return (pred_answers == answers).all(dim=1).float().mean().item()

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        """Token ids of one sequence as text (the mask shows as '_')."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        out = []
        for i in ids:
            if not 0 <= i < len(self.vocab):
                raise ValueError(f"task {self.name!r}: token id {i} is outside the vocabulary of {len(self.vocab)}")
            out.append("_" if i == self.mask_id else self.vocab[i])
        return "".join(out)


@dataclass
class SortDigits(_Puzzle):
    """Sort n random decimal digits.

    Layout: prompt = d_1 .. d_n '=', answer = the same digits in ascending order.
    The '=' separator gives every answer position a fixed offset from the prompt, which is all
    the relative (RoPE) position signal the model needs.
    """

    n_digits: int = 12
    name: str = field(default="sort", init=False)

    def __post_init__(self) -> None:
        _check_positive_int(self.name, "n_digits", self.n_digits)
        self.vocab = DIGITS + ["=", MASK_TOKEN]
        self.prompt_length = self.n_digits + 1
        self.answer_length = self.n_digits

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        digits = torch.randint(0, 10, (n, self.n_digits), generator=generator)
        equals = torch.full((n, 1), self.vocab.index("="), dtype=torch.long)
        return torch.cat([digits, equals], dim=1), digits.sort(dim=1).values


@dataclass
class AddNumbers(_Puzzle):
    """Add two random n-digit numbers (leading zeros allowed), digits written least significant first.

    Layout: prompt = a_0 .. a_{n-1} '+' b_0 .. b_{n-1} '=', answer = s_0 .. s_n, where x_0 is the
    units digit. The answer has n + 1 digits (the last one is the final carry, often 0), so every
    answer has the same width. Writing digits reversed aligns digit i of a, b and the sum at fixed
    relative offsets and puts each carry next to the digit it comes from; a tiny model learns this
    layout much faster than the usual most-significant-first one.
    """

    n_digits: int = 8
    name: str = field(default="add", init=False)

    def __post_init__(self) -> None:
        _check_positive_int(self.name, "n_digits", self.n_digits)
        self.vocab = DIGITS + ["+", "=", MASK_TOKEN]
        self.prompt_length = 2 * self.n_digits + 2
        self.answer_length = self.n_digits + 1

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.randint(0, 10, (n, self.n_digits), generator=generator)
        b = torch.randint(0, 10, (n, self.n_digits), generator=generator)
        answer = torch.zeros(n, self.answer_length, dtype=torch.long)
        carry = torch.zeros(n, dtype=torch.long)
        for i in range(self.n_digits):
            column = a[:, i] + b[:, i] + carry
            answer[:, i] = column % 10
            carry = column // 10
        answer[:, self.n_digits] = carry
        plus = torch.full((n, 1), self.vocab.index("+"), dtype=torch.long)
        equals = torch.full((n, 1), self.vocab.index("="), dtype=torch.long)
        return torch.cat([a, plus, b, equals], dim=1), answer

    def to_int(self, digits_lsb_first: torch.Tensor) -> list[int]:
        """Rows of least-significant-first digits as Python integers (for checks and display)."""
        return [int("".join(str(d) for d in reversed(row.tolist()))) for row in digits_lsb_first]


# The character corpus's vocabulary: newline, printable ASCII, [UNK] and [MASK] (fixed, independent of the text).
TEXT_VOCAB = ("\n", *(chr(c) for c in range(32, 127)), UNKNOWN_TOKEN, MASK_TOKEN)


def _pydoc_topics() -> dict[str, str]:
    try:
        from pydoc_data.topics import topics
    except ImportError as error:  # some distributions strip pydoc_data
        raise RuntimeError(
            "the text corpus needs the standard-library module pydoc_data.topics, "
            "which this Python installation does not have"
        ) from error
    return topics


@dataclass
class CharCorpus:
    """Character-level text from Python's own pydoc topics, split into train and validation.

    Vocabulary (fixed, independent of the text): newline, the 95 printable ASCII characters,
    [UNK] for anything else (about 0.1% of the text: curly quotes, dashes) and [MASK].
    Split: the topics are sorted by name and every `validation_every`-th topic (starting with
    the first) goes to validation, the rest to training, so the two never share a topic.
    Within a split the topics are joined with a blank line; windows may cross topic borders.
    """

    window_length: int = 128
    validation_every: int = 10
    name: str = field(default="text", init=False)

    def __post_init__(self) -> None:
        _check_positive_int(self.name, "window_length", self.window_length)
        _check_positive_int(self.name, "validation_every", self.validation_every)
        if self.validation_every < 2:
            raise ValueError(f"task 'text': validation_every must be at least 2, got {self.validation_every}")
        self.vocab = list(TEXT_VOCAB)
        self._index = {ch: i for i, ch in enumerate(self.vocab[:-2])}
        topics = _pydoc_topics()
        names = sorted(topics)
        self.validation_topics = names[:: self.validation_every]
        held_out = set(self.validation_topics)
        self.train_topics = [n for n in names if n not in held_out]
        self.train_ids = self.encode("\n\n".join(topics[n] for n in self.train_topics))
        self.validation_ids = self.encode("\n\n".join(topics[n] for n in self.validation_topics))
        for split, ids in (("train", self.train_ids), ("validation", self.validation_ids)):
            if len(ids) <= self.window_length:
                raise ValueError(
                    f"task 'text': the {split} split has {len(ids)} characters, "
                    f"not more than window_length={self.window_length}"
                )

    @property
    def mask_id(self) -> int:
        return self.vocab.index(MASK_TOKEN)

    @property
    def unknown_id(self) -> int:
        return self.vocab.index(UNKNOWN_TOKEN)

    @property
    def sequence_length(self) -> int:
        return self.window_length

    def encode(self, text: str) -> torch.Tensor:
        unknown = self.unknown_id
        return torch.tensor([self._index.get(ch, unknown) for ch in text], dtype=torch.long)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return "".join("_" if i == self.mask_id else self.vocab[i] for i in ids)

    def split_ids(self, split: str) -> torch.Tensor:
        if split == "train":
            return self.train_ids
        if split == "validation":
            return self.validation_ids
        raise ValueError(f"task 'text': unknown split {split!r} (expected 'train' or 'validation')")

    def sample_windows(
        self, n: int, length: int, generator: torch.Generator, split: str = "train"
    ) -> torch.Tensor:
        """n windows of `length` consecutive characters at uniformly random offsets, (n, length)."""
        ids = self.split_ids(split)
        if not 1 <= length < len(ids):
            raise ValueError(f"task 'text': window length {length} must be in 1..{len(ids) - 1} for split {split!r}")
        starts = torch.randint(0, len(ids) - length + 1, (n,), generator=generator)
        return ids[starts[:, None] + torch.arange(length)[None, :]]

    def sample_training_batch(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Training windows; every position may be masked (pre-training style)."""
        windows = self.sample_windows(n, self.window_length, generator, split="train")
        return windows, torch.ones(self.window_length, dtype=torch.bool)

    @torch.no_grad()
    def perplexity(
        self,
        model: torch.nn.Module,
        n_windows: int = 64,
        n_mask_draws: int = 8,
        seed: int = 0,
        batch_size: int = 64,
    ) -> tuple[float, float]:
        """Validation perplexity per character of a masked-diffusion model: (perplexity, nll_nats).

        A masked-diffusion model has no exact likelihood; it bounds it. For a window x of length
        L, LLaDA's estimator (Nie et al. 2025, Eq. 6 / Algorithm 3) is
            -log p(x) <= E_{l ~ U{1..L}} [ (L / l) * sum_{i masked} -log p(x_i | x with l random tokens masked) ]
        This draws `n_mask_draws` (l, mask) pairs per window and `n_windows` validation windows,
        all from one seeded generator, and returns exp(bound / L) averaged over everything, i.e.
        an upper bound on the true per-character perplexity (in expectation).
        """
        generator = torch.Generator().manual_seed(seed)
        windows = self.sample_windows(n_windows, self.window_length, generator, split="validation")
        windows = windows.repeat_interleave(n_mask_draws, dim=0)
        total_nll = 0.0
        length = self.window_length
        was_training = model.training
        model.eval()
        for start in range(0, windows.shape[0], batch_size):
            x = windows[start : start + batch_size]
            n_masked = torch.randint(1, length + 1, (x.shape[0],), generator=generator)
            ranks = torch.rand(x.shape, generator=generator).argsort(dim=1).argsort(dim=1)
            masked = ranks < n_masked[:, None]
            noisy = torch.where(masked, torch.full_like(x, self.mask_id), x)
            logits = model(noisy).float()
            token_nll = F.cross_entropy(logits.transpose(1, 2), x, reduction="none")
            per_window = (token_nll * masked).sum(dim=1) * length / n_masked
            total_nll += per_window.sum().item()
        model.train(was_training)
        nll_per_char = total_nll / (windows.shape[0] * length)
        return math.exp(nll_per_char), nll_per_char


TASKS = {"sort": SortDigits, "add": AddNumbers, "text": CharCorpus}


def get_task(spec: dict) -> SortDigits | AddNumbers | CharCorpus:
    """Build a task from a YAML `task:` mapping such as {name: sort, n_digits: 12}."""
    if not isinstance(spec, dict):
        raise ValueError(f"task spec must be a mapping with a 'name' key, got {spec!r}")
    if "name" not in spec:
        raise ValueError(f"task spec {spec!r} has no 'name' (one of {sorted(TASKS)})")
    name = spec["name"]
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}")
    cls = TASKS[name]
    params = {k: v for k, v in spec.items() if k != "name"}
    allowed = {f.name for f in cls.__dataclass_fields__.values() if f.init}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"task {name!r}: unknown parameter(s) {unknown}; allowed: {sorted(allowed)}")
    return cls(**params)


@dataclass(frozen=True)
class TaskLayout:
    """What a model preset must agree with, read from a task spec without building the task
    (the text corpus would read and encode its whole text): vocabulary, mask id, lengths."""

    name: str
    vocab_size: int
    mask_id: int
    sequence_length: int
    maskable_length: int  # positions the training loss masks (block-diffusion blocks tile them)
    answer_length: int | None  # puzzles: the tokens a generation must produce; text: None


def task_layout(spec: dict) -> TaskLayout:
    """The layout of the task `get_task(spec)` would build; raises ValueError as get_task does."""
    if isinstance(spec, dict) and spec.get("name") == "text":
        params = {k: v for k, v in spec.items() if k != "name"}
        allowed = {f.name for f in CharCorpus.__dataclass_fields__.values() if f.init}
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ValueError(f"task 'text': unknown parameter(s) {unknown}; allowed: {sorted(allowed)}")
        window = _check_positive_int("text", "window_length", params.get("window_length", 128))
        return TaskLayout("text", len(TEXT_VOCAB), TEXT_VOCAB.index(MASK_TOKEN), window, window, None)
    task = get_task(spec)
    return TaskLayout(task.name, len(task.vocab), task.mask_id, task.sequence_length, task.answer_length,
                      task.answer_length)
