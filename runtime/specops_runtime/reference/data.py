"""Synthetic task sets of different predictability, deterministic by seed.

Three families stand in for the paper's benchmark groups, so that tau differs per task as it does
for real models (math > code > chat):

- ``math``: arithmetic progressions; the continuation is fully determined by the prompt.
- ``code``: templated functions and loops; syntax is fixed, identifiers are random picks.
- ``chat``: open-ended sentences from a loose grammar with many choices per slot (high entropy).

Samples use DeepSpec's training-row layout: ``{"id", "task", "conversations": [{role, content}]}``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

TASK_NAMES = ("math", "code", "chat")

_MATH_WORDS = [
    "table",
    "of",
    "continue",
    "the",
    "sequence",
    "count",
    "by",
    "from",
    "step",
    "is",
    "so",
    "next",
    ":",
    ".",
]
_CODE_OPS = {"add": "+", "sub": "-", "mul": "*", "scale": "*", "shift": "+", "drop": "-"}
_CODE_VARS = ["x", "y", "n", "item", "value", "row", "key", "total"]
_CODE_COLLECTIONS = ["items", "rows", "values", "keys", "data", "nums"]
_CODE_ACTIONS = ["print", "append", "emit", "log", "save"]
_CODE_WORDS = [
    "write",
    "a",
    "function",
    "that",
    "loop",
    "over",
    "def",
    "(",
    ")",
    "return",
    "for",
    "in",
    "if",
    "else",
    "=",
    "+",
    "-",
    "*",
    ">",
    "<",
    "==",
    "out",
    "pass",
    "adds",
    "subtracts",
    "multiplies",
    "filter",
    "keep",
    "greater",
    "less",
    "than",
    "[",
    "]",
]
_CHAT_TOPICS = [
    "cats",
    "dogs",
    "rain",
    "music",
    "coffee",
    "cities",
    "trees",
    "books",
    "rivers",
    "games",
    "winter",
    "bread",
]
_CHAT_ADJ = [
    "warm",
    "quiet",
    "bright",
    "strange",
    "gentle",
    "busy",
    "calm",
    "wild",
    "soft",
    "old",
    "new",
    "simple",
    "deep",
    "rare",
    "fresh",
    "kind",
]
_CHAT_VERB = [
    "like",
    "love",
    "miss",
    "enjoy",
    "notice",
    "remember",
    "find",
    "see",
    "need",
    "want",
    "follow",
    "keep",
]
_CHAT_NOUN = [
    "people",
    "mornings",
    "stories",
    "colors",
    "sounds",
    "friends",
    "places",
    "days",
    "ideas",
    "songs",
    "roads",
    "gardens",
]
_CHAT_ADV = ["often", "really", "always", "sometimes", "rarely", "truly", "mostly", "still"]
_CHAT_WORDS = [
    "tell",
    "me",
    "about",
    "what",
    "do",
    "you",
    "think",
    "of",
    "i",
    "they",
    "are",
    "and",
    "the",
    "but",
    "because",
    "with",
    "very",
    "it",
    "makes",
    "feel",
    ".",
]


def vocabulary_words() -> list[str]:
    """Every word the generators can emit (numbers are added by the tokenizer)."""
    words: list[str] = []
    for group in (
        _MATH_WORDS,
        list(_CODE_OPS),
        _CODE_VARS,
        _CODE_COLLECTIONS,
        _CODE_ACTIONS,
        _CODE_WORDS,
        _CHAT_TOPICS,
        _CHAT_ADJ,
        _CHAT_VERB,
        _CHAT_NOUN,
        _CHAT_ADV,
        _CHAT_WORDS,
    ):
        for word in group:
            if word not in words:
                words.append(word)
    return words


@dataclass(frozen=True)
class Example:
    task: str
    prompt: str
    answer: str


def _math(rng: random.Random) -> Example:
    """Arithmetic with a unique answer: multiplication tables and short progressions."""
    form = rng.randrange(3)
    if form == 0:
        base = rng.randrange(2, 13)
        prompt = f"table of {base}"
        answer = " ".join(str(base * i) for i in range(1, 11)) + f" . so the step is {base} ."
        return Example("math", prompt, answer)
    start, step = rng.randrange(0, 40), rng.randrange(1, 6)
    terms = [start + i * step for i in range(10)]
    if form == 1:
        prompt, shown = f"count by {step} from {start}", terms[1:9]
    else:
        prompt, shown = "continue the sequence " + " ".join(map(str, terms[:3])), terms[3:10]
    return Example("math", prompt, " ".join(map(str, shown)) + f" . so the step is {step} .")


def _code(rng: random.Random) -> Example:
    kind = rng.randrange(3)
    if kind == 0:
        name = rng.choice(list(_CODE_OPS))
        var, k = rng.choice(_CODE_VARS), rng.randrange(1, 20)
        verb = {"+": "adds", "-": "subtracts", "*": "multiplies"}[_CODE_OPS[name]]
        prompt = f"write a function {name} that {verb} {k}"
        answer = f"def {name} ( {var} ) : return {var} {_CODE_OPS[name]} {k}"
    elif kind == 1:
        coll, var, action = rng.choice(_CODE_COLLECTIONS), rng.choice(_CODE_VARS), rng.choice(_CODE_ACTIONS)
        prompt = f"write a loop over {coll}"
        answer = f"for {var} in {coll} : {action} ( {var} )"
    else:
        coll, var, k = rng.choice(_CODE_COLLECTIONS), rng.choice(_CODE_VARS), rng.randrange(0, 50)
        cmp = rng.choice([">", "<"])
        word = "greater" if cmp == ">" else "less"
        prompt = f"write a filter that keep {coll} {word} than {k}"
        answer = f"out = [ ] for {var} in {coll} : if {var} {cmp} {k} : out . append ( {var} ) return out"
    return Example("code", prompt, answer)


def _chat_language() -> dict[str, list[tuple[str, float]]]:
    """A fixed random bigram "language" over the chat words (seeded, the same everywhere).

    Each word's successor distribution is a draw from a sparse Dirichlet: peaked but varied,
    like open-ended text, so a draft must learn many distinct distributions to match the target.
    """
    rng = random.Random("specops-chat-language-v1")
    words = _chat_vocabulary()
    table: dict[str, list[tuple[str, float]]] = {}
    for word in words:
        weights = [rng.gammavariate(_CHAT_DIRICHLET_ALPHA, 1.0) for _ in words]
        total = sum(weights)
        table[word] = [(w, x / total) for w, x in zip(words, weights, strict=True)]
    return table


def _chat_vocabulary() -> list[str]:
    return [*_CHAT_TOPICS, *_CHAT_ADJ, *_CHAT_VERB, *_CHAT_NOUN, *_CHAT_ADV, *_CHAT_WORDS]


_CHAT_DIRICHLET_ALPHA = 0.1
_CHAT_TABLE: dict[str, list[tuple[str, float]]] = {}


def _chat(rng: random.Random) -> Example:
    """Open-ended answers: a walk through the bigram language, started from the topic."""
    if not _CHAT_TABLE:
        _CHAT_TABLE.update(_chat_language())
    topic = rng.choice(_CHAT_TOPICS)
    prompt = rng.choice([f"tell me about {topic}", f"what do you think of {topic}"])
    words = [topic]
    for _ in range(rng.randrange(14, 22)):
        successors = _CHAT_TABLE[words[-1]]
        words.append(rng.choices([w for w, _ in successors], weights=[p for _, p in successors])[0])
    return Example("chat", prompt, " ".join(words) + " .")


GENERATORS: dict[str, Callable[[random.Random], Example]] = {"math": _math, "code": _code, "chat": _chat}


def generate(task: str, count: int, seed: int) -> list[Example]:
    """``count`` examples of one task set; the same (task, count, seed) always yields the same list."""
    if task not in GENERATORS:
        raise ValueError(f"tasks.name: unknown task set {task!r} (known: {', '.join(TASK_NAMES)})")
    rng = random.Random(f"{task}:{seed}")
    return [GENERATORS[task](rng) for _ in range(count)]


def mixture(tasks: dict[str, int], seed: int) -> Iterator[Example]:
    """Interleaved examples of several task sets (shuffled deterministically)."""
    rows = [ex for name, count in tasks.items() for ex in generate(name, count, seed)]
    random.Random(seed).shuffle(rows)
    yield from rows


def to_training_row(example: Example, index: int) -> dict:
    return {
        "id": f"{example.task}-{index}",
        "task": example.task,
        "conversations": [
            {"role": "user", "content": example.prompt},
            {"role": "assistant", "content": example.answer},
        ],
    }


def to_eval_row(example: Example, index: int) -> dict:
    return {
        "id": f"{example.task}-{index}",
        "task": example.task,
        "turns": [example.prompt],
        "reference": example.answer,
    }
