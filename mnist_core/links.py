"""A training job as URL query parameters, so a teacher can hand out an exercise as a link.

``/train?kind=ann&hidden=32&epochs=2`` opens the Train page with those settings. The
parameters are the fields of the job's dataclasses (model config, ``TrainingConfig``, the
job), found by introspection so that a new field is a new parameter with no edit here;
``SHORT_NAMES`` only shortens a few for people typing them. A link carries only what
differs from the defaults, and a bad parameter is reported by name and skipped: a typo in a
handed-out link must not cost the class the rest of the exercise.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields, replace
from urllib.parse import urlencode

from .jobs import TrainingConfig, TrainingJob, default_job
from .models import CONFIGS, KINDS, parse_layer_sizes
from .text import MAX_SHOWN, shortened

SHORT_NAMES = {
    "hidden_units": "hidden",
    "learning_rate": "lr",
    "time_budget": "seconds",
    "batch_size": "batch",
    "kernel_size": "kernel",
    "dense_units": "dense",
    "output_activation": "output",
    "drawings_weight": "weight",
}
# Where the server reads data, drawings and writes models, who asked, and which saved model
# a fine-tune starts from: never a visitor's choice.
SERVER_FIELDS = frozenset(
    {"data_path", "models_dir", "drawings_dir", "owner", "owner_name", "parent"}
)
KIND = "kind"
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Parameter:
    """One query parameter: the dataclass field it sets, that field's type and which kinds
    of network have it."""

    name: str
    field: str
    part: str  # "model", "training" or "job": where the field lives in a TrainingJob
    type: object
    kinds: tuple[str, ...]


def _parameters() -> dict[str, Parameter]:
    owners = [
        *(("model", cls, (kind,)) for kind, cls in CONFIGS.items()),
        ("training", TrainingConfig, KINDS),
        ("job", TrainingJob, KINDS),
    ]
    found: dict[str, Parameter] = {}
    for part, cls, kinds in owners:
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if part == "job" and f.name in {"model", "training", *SERVER_FIELDS}:
                continue
            name = SHORT_NAMES.get(f.name, f.name)
            before = found.get(name)
            kinds_so_far = before.kinds if before else ()
            found[name] = Parameter(name, f.name, part, hints[f.name], kinds_so_far + kinds)
    return found


PARAMETERS = _parameters()  # query name -> Parameter, in the dataclasses' field order


def query_from_job(job: TrainingJob, base: TrainingJob | None = None) -> dict[str, str]:
    """The parameters of ``job`` that differ from ``base`` (default: the default job of its
    kind), plus its kind, as text for a URL."""
    base = base or default_job(job.kind)
    query = {KIND: job.kind}
    for parameter in PARAMETERS.values():
        if job.kind not in parameter.kinds:
            continue
        value = _value(job, parameter)
        if value != _value(base, parameter):
            query[parameter.name] = _text(value)
    return query


def job_settings(job: TrainingJob) -> dict[str, object]:
    """Every setting of ``job`` a link can carry, by field name: ``default_job(job.kind,
    **job_settings(job))`` is ``job`` again, less where the server keeps its files."""
    return {p.field: _value(job, p) for p in PARAMETERS.values() if job.kind in p.kinds}


def link(base_url: str, job: TrainingJob) -> str:
    """``base_url`` (a page's address, without a query) with ``job``'s settings appended."""
    return f"{base_url}?{urlencode(query_from_job(job), safe=',')}"


def job_from_query(
    params: Mapping[str, str | list[str]],
    base: TrainingJob | None = None,
    *,
    kind: str = "cnn",
    available: int | None = None,
    other_parameters: Collection[str] = (),
) -> tuple[TrainingJob, list[str]]:
    """The job a URL's query asks for, and one message per parameter that was ignored.

    Starts from ``base`` (default: the default job of the query's ``kind``, else of
    ``kind``). Each value must parse as its field's type and pass the job's own checks
    (``TrainingJob.check`` with ``available`` training images); a value that does not is
    named in a message and skipped, the rest applies. ``other_parameters`` are names the
    caller reads itself (e.g. ``preset``): not reported as unknown.
    """
    values = {
        name: value[-1] if isinstance(value, list) else value for name, value in params.items()
    }
    problems = []
    wanted = values.pop(KIND, None)
    if base is None:
        if wanted is not None and wanted not in KINDS:
            problems.append(_ignored(KIND, wanted, f"must be one of {', '.join(KINDS)}"))
            wanted = None
        base = default_job(wanted or kind)
    elif wanted is not None and wanted != base.kind:
        problems.append(_ignored(KIND, wanted, f"these settings are for the {base.kind.upper()}"))

    parsed: dict[str, object] = {}
    for name, text in values.items():
        parameter = PARAMETERS.get(name)
        if parameter is None:
            if name not in other_parameters:
                problems.append(_ignored(name, text, f"not a setting ({', '.join(PARAMETERS)})"))
        elif base.kind not in parameter.kinds:
            owner = "/".join(k.upper() for k in parameter.kinds)
            problems.append(
                _ignored(name, text, f"a setting of the {owner}, not the {base.kind.upper()}")
            )
        else:
            try:
                parsed[name] = _parse(text, parameter.type)
            except ValueError as error:
                problems.append(_ignored(name, text, str(error)))

    # Some checks tie two settings (a tanh output needs the mse loss), so a value refused
    # before another one applied is tried again until nothing more applies.
    job, refused = base, dict.fromkeys(parsed, "")
    while refused:
        for name in list(refused):
            candidate = _with(job, PARAMETERS[name], parsed[name])
            try:
                candidate.check(available)
            except ValueError as error:
                refused[name] = str(error)
                continue
            job = candidate
            del refused[name]
            break
        else:
            break
    problems += [_ignored(name, values[name], reason) for name, reason in refused.items()]
    return job, problems


def _ignored(name: str, text: str, reason: str) -> str:
    """The message for a parameter skipped for ``reason``, each part cut short: a link can
    carry thousands of characters, and the page shows every message."""
    return f"{shortened(name)}={shortened(text)!r} ignored: {shortened(reason, 4 * MAX_SHOWN)}"


def _value(job: TrainingJob, parameter: Parameter):
    owner = job if parameter.part == "job" else getattr(job, parameter.part)
    return getattr(owner, parameter.field)


def _with(job: TrainingJob, parameter: Parameter, value) -> TrainingJob:
    if parameter.part == "job":
        return replace(job, **{parameter.field: value})
    part = replace(getattr(job, parameter.part), **{parameter.field: value})
    return replace(job, **{parameter.part: part})


def _text(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _parse(text: str, hint) -> object:
    """``text`` as a value of the field type ``hint``; ``ValueError`` says what was expected."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        if text.strip().lower() in ("", "none"):
            return None
        (hint,) = [arg for arg in args if arg is not type(None)]
    if typing.get_origin(hint) is tuple:
        return parse_layer_sizes(text)
    if hint is bool:
        if text.lower() in TRUE + FALSE:
            return text.lower() in TRUE
        raise ValueError("must be true or false")
    if hint is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError("must be a whole number") from None
    if hint is float:
        try:
            number = float(text)
        except ValueError:
            raise ValueError("must be a number") from None
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        return number
    if hint is str:
        return text
    raise TypeError(f"no reading of {hint} from a URL")  # a new field of a new type
