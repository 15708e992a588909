"""The search space: candidate architectures ⟨D, A, H, I⟩ (plus optional
TrimBERT knobs) below a reference shape.

Three ways to give it:

- ``"paper"``: the grid reported for Bort's search (de Wynter & Perry
  2020): D ∈ {2, 4, 6, 8, 10, 12}, A ∈ {4, 8, 12, 16}, H ∈ {512, 768, 1024},
  I ∈ {256, 512, 768, 1024, 3072}, clipped to the reference (D ≤ L,
  A ≤ heads, H ≤ hidden, I ≤ intermediate);
- ``"fractions"``: fractions of the reference's sizes, for references
  smaller than the paper's grid: D ∈ {⅓, ½, ⅔, 1}·L, A ∈ {⅓, ½, ⅔, 1}·heads,
  H ∈ {½, ⅔, 1}·hidden, I ∈ {⅛, ¼, ½, 1}·intermediate (rounded, at least 1);
- ``"small"``: a handful of fractions (8 candidates: D ∈ {⅓, ⅔}·L,
  A ∈ {½, 1}·heads, H = hidden, I ∈ {¼, 1}·intermediate), for quick runs;
- an explicit grid ``"D=2,4;A=4,8;H=256,384;I=384,1536"`` (every
  combination; ``/`` separates values too, ``D=2/4``, for config argument
  strings where commas separate arguments).

``"auto"`` is the paper's grid when clipping leaves at least one value of
every dimension in it, else the fractions.

Head size: candidates built from a teacher keep the teacher's head size
(weight inheritance cuts whole heads), so A and H are independent; the
paper's rule of skipping H not divisible by A applies only when the head
size is ``H / A`` (a reference shape without weights, ``head_dim=None``).

Examples:

>>> ref = {"num_layers": 6, "num_heads": 12, "hidden_dim": 384,
...        "intermediate_dim": 1536, "head_dim": 32}
>>> space = build_space("fractions", ref)
>>> len(space), space[0].name
(192, 'D2-A4-H192-I192')
>>> [c.name for c in build_space("small", ref)][:3]
['D2-A6-H384-I384', 'D2-A6-H384-I1536', 'D2-A12-H384-I384']
>>> len(build_space("D=2;A=4,8;H=384;I=768", ref))
2
"""

import dataclasses
import itertools

SPACES = ("auto", "paper", "fractions", "small")

PAPER_GRID = {
    "num_layers": (2, 4, 6, 8, 10, 12),
    "num_heads": (4, 8, 12, 16),
    "hidden_dim": (512, 768, 1024),
    "intermediate_dim": (256, 512, 768, 1024, 3072),
}

FRACTIONS = {
    "num_layers": (1 / 3, 1 / 2, 2 / 3, 1),
    "num_heads": (1 / 3, 1 / 2, 2 / 3, 1),
    "hidden_dim": (1 / 2, 2 / 3, 1),
    "intermediate_dim": (1 / 8, 1 / 4, 1 / 2, 1),
}

# A handful of candidates (8) that still vary every dimension: for quick
# runs (runlocal) and tests.
SMALL_FRACTIONS = {
    "num_layers": (1 / 3, 2 / 3),
    "num_heads": (1 / 2, 1),
    "hidden_dim": (1,),
    "intermediate_dim": (1 / 4, 1),
}

#: Short names of the dimensions (``"D=2,4;A=..."``).
LETTERS = {"D": "num_layers", "A": "num_heads", "H": "hidden_dim",
           "I": "intermediate_dim"}


@dataclasses.dataclass(frozen=True, order=True)
class Candidate:
    """One architecture of the space.

    Args:
        num_layers: int. D.
        num_heads: int. A (heads per layer).
        hidden_dim: int. H.
        intermediate_dim: int. I (FFN width).
        ffn_every: int or None. Keep the FFN only in every N-th layer
            (TrimBERT); None keeps all FFNs.
        normalizer: str or None. Attention score normaliser; None keeps the
            reference's.
    """

    num_layers: int
    num_heads: int
    hidden_dim: int
    intermediate_dim: int
    ffn_every: int = None
    normalizer: str = None

    @property
    def name(self):
        """A stable key, e.g. ``D4-A8-H256-I768`` (``-F3-Nsigmoid`` with
        the TrimBERT knobs)."""
        name = (f"D{self.num_layers}-A{self.num_heads}-H{self.hidden_dim}-"
                f"I{self.intermediate_dim}")
        if self.ffn_every:
            name += f"-F{self.ffn_every}"
        if self.normalizer:
            name += f"-N{self.normalizer}"
        return name

    def as_dict(self):
        return dataclasses.asdict(self)


def reference_shape(backbone):
    """``{num_layers, num_heads, hidden_dim, intermediate_dim, head_dim}``
    of a uniform ``TrimzooBackbone`` (the widest layer of a pruned one)."""
    options = backbone.layer_options
    return {"num_layers": backbone.num_layers,
            "num_heads": max(o["num_heads"] for o in options),
            "hidden_dim": backbone.hidden_dim,
            "intermediate_dim": max(o["intermediate_dim"] for o in options),
            "head_dim": options[0]["head_dim"]}


def parse_grid(spec):
    """``"D=2,4;A=4,8;H=256;I=384"`` -> ``{dimension: values}``; every
    dimension must be given.

    >>> parse_grid("D=2,4;A=4;H=128;I=256")["num_layers"]
    (2, 4)
    """
    grid = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        letter, sep, values = part.partition("=")
        letter = letter.strip().upper()
        if not sep or letter not in LETTERS:
            raise ValueError(
                f"Bad space entry {part!r}: write 'D=..;A=..;H=..;I=..' "
                f"with letters {list(LETTERS)}, or one of {list(SPACES)}.")
        try:
            numbers = tuple(int(v) for v in values.replace("/", ",").split(",")
                            if v.strip())
        except ValueError:
            raise ValueError(f"Space entry {part!r} has a value that is not "
                             "an integer.") from None
        if any(v < 1 for v in numbers):
            raise ValueError(f"Space entry {part!r}: sizes must be >= 1.")
        grid[LETTERS[letter]] = numbers
    missing = [k for k, v in LETTERS.items() if not grid.get(v)]
    if missing:
        raise ValueError(f"The space {spec!r} gives no values for {missing}; "
                         "every one of D, A, H, I needs at least one.")
    return grid


def _clip(grid, reference):
    return {dim: tuple(v for v in values if v <= reference[dim])
            for dim, values in grid.items()}


def _fractions(reference, fractions=None):
    return {dim: tuple(sorted({max(1, round(f * reference[dim]))
                               for f in fracs}))
            for dim, fracs in (fractions or FRACTIONS).items()}


def build_space(space, reference, ffn_every=(None,), normalizers=(None,)):
    """The candidates of ``space`` under ``reference``, sorted.

    Args:
        space: str. ``"auto"``, ``"paper"``, ``"fractions"`` or an explicit
            grid (see the module docstring).
        reference: dict from ``reference_shape`` (``head_dim`` None means
            ``H / A``).
        ffn_every: sequence of int or None. Extra dimension: TrimBERT FFN
            frequency (None: every layer keeps its FFN). Defaults to
            ``(None,)``.
        normalizers: sequence of str or None. Extra dimension: attention
            normaliser (None: the reference's). Defaults to ``(None,)``.

    Returns:
        list of ``Candidate``.

    Raises:
        ValueError: for an unknown space name, an explicit grid with sizes
            larger than the reference (naming them), or an empty space.
    """
    if not isinstance(space, str) or not space.strip():
        raise ValueError(f"The space is empty ({space!r}); give one of "
                         f"{list(SPACES)} or 'D=..;A=..;H=..;I=..'.")
    space = space.strip()
    if space in SPACES:
        grid = _clip(PAPER_GRID, reference)
        if space == "small":
            grid = _fractions(reference, SMALL_FRACTIONS)
        elif space == "fractions" or (space == "auto"
                                    and not all(grid.values())):
            grid = _fractions(reference)
        elif not all(grid.values()):
            empty = [k for k, v in grid.items() if not v]
            raise ValueError(
                f"The paper's grid clipped to the reference {reference} "
                f"leaves no values of {empty}: the space is empty; use "
                "space='fractions' (or 'auto').")
    elif "=" in space:
        grid = parse_grid(space)
        larger = {dim: [v for v in values if v > reference[dim]]
                  for dim, values in grid.items()}
        larger = {k: v for k, v in larger.items() if v}
        if larger:
            raise ValueError(
                f"The space is larger than the reference: {larger} exceed "
                f"its sizes {({k: reference[k] for k in larger})}; a "
                "candidate can only keep parts the reference has.")
    else:
        raise ValueError(f"Unknown space {space!r}; give one of "
                         f"{list(SPACES)} or 'D=..;A=..;H=..;I=..'.")
    ffn_every = tuple(ffn_every) or (None,)
    normalizers = tuple(normalizers) or (None,)
    for n in ffn_every:
        if n is not None and (not isinstance(n, int) or n < 1):
            raise ValueError(f"ffn_every values must be ints >= 1 or None, "
                             f"got {n!r}.")
    candidates = []
    for d, a, h, i, f, n in itertools.product(
            grid["num_layers"], grid["num_heads"], grid["hidden_dim"],
            grid["intermediate_dim"], ffn_every, normalizers):
        if reference.get("head_dim") is None and h % a:
            continue  # the head size H / A must be whole
        if f is not None and f > d:
            continue  # no layer would keep its FFN
        candidates.append(Candidate(d, a, h, i, f, n))
    if not candidates:
        raise ValueError(f"The space {space!r} has no candidates under the "
                         f"reference {reference}.")
    return sorted(candidates, key=lambda c: (
        c.num_layers, c.num_heads, c.hidden_dim, c.intermediate_dim,
        str(c.ffn_every), str(c.normalizer)))


def candidate_config(base, candidate, head_dim):
    """The backbone config of ``candidate``'s shape: ``base`` (a backbone
    config dict: the teacher's or a reference preset's) with the
    candidate's depth, heads, widths and TrimBERT knobs."""
    config = dict(base)
    config.update(num_layers=candidate.num_layers,
                  num_heads=candidate.num_heads,
                  hidden_dim=candidate.hidden_dim,
                  intermediate_dim=candidate.intermediate_dim,
                  head_dim=head_dim)
    if candidate.ffn_every:
        config["ffn_layers"] = f"every_{candidate.ffn_every}"
    if candidate.normalizer:
        config["attention_normalizer"] = candidate.normalizer
    return config
