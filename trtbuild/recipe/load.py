"""Load a recipe: TOML -> typed ``Recipe`` -> cross-field checks, with every problem reported at once.

Each problem names the file, the field, the offending value and the fix; the CLI exits 2 on them.
"""

from __future__ import annotations

import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from trtbuild.errors import RecipeError, RecipeIssue
from trtbuild.recipe.checks import Problem, check_recipe, did_you_mean
from trtbuild.recipe.model_config import ModelFacts, locate_model_config, pinned_revision
from trtbuild.recipe.schema import SHA_RE, Recipe
from trtbuild.recipe.toolchain import Toolchain, load_toolchains

MAX_RECIPE_BYTES = 1 << 20


@dataclass(frozen=True)
class LoadedRecipe:
    """A validated recipe with what was learned while validating it."""

    path: Path
    recipe: Recipe
    toolchain: Toolchain
    facts: ModelFacts | None
    facts_missing: str | None = None  # why the model's config.json was not at hand (its checks did not run)

    @property
    def backend(self) -> str:
        """``engine`` or ``pytorch`` (the recipe's, else the toolchain's default)."""
        from trtbuild.recipe.pytorch_checks import effective_backend

        return effective_backend(self.recipe, self.toolchain)

    @property
    def revision_is_pinned(self) -> bool:
        model = self.recipe.model
        if model.scheme == "hf":
            return bool(model.revision and SHA_RE.match(model.revision))
        return model.scheme == "file"  # local dirs are pinned by content; s3 prefixes need a lock


def load_recipe(path: Path | str, toolchains: dict[str, Toolchain] | None = None) -> LoadedRecipe:
    """Parse, type-check and cross-check ``path``; raise ``RecipeError`` listing every problem."""
    path = Path(path)
    shown = str(path)
    try:
        if path.stat().st_size > MAX_RECIPE_BYTES:
            raise RecipeError(
                [RecipeIssue(shown, "(file)", f"larger than {MAX_RECIPE_BYTES} bytes", "pass a recipe")]
            )
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise RecipeError([RecipeIssue(shown, "(file)", "recipe not found", "check the path")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(
            [RecipeIssue(shown, "(file)", f"cannot read: {exc}", "pass a UTF-8 .toml file")]
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(
            [RecipeIssue(shown, "(syntax)", f"not valid TOML: {exc}", "fix the TOML syntax at that line")]
        ) from None
    except RecursionError:
        raise RecipeError(
            [RecipeIssue(shown, "(syntax)", "nested too deeply", "a recipe is a few flat tables")]
        ) from None
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        raise RecipeError([_issue_from_pydantic(shown, err) for err in exc.errors()]) from None
    except RecursionError:
        raise RecipeError(
            [RecipeIssue(shown, "(file)", "nested too deeply", "a recipe is a few flat tables")]
        ) from None

    toolchains = toolchains if toolchains is not None else load_toolchains()
    facts, missing = _model_facts(recipe, path)
    problems = check_recipe(recipe, toolchains, facts, path.parent)
    if problems:
        raise RecipeError([_issue(shown, p) for p in problems])
    return LoadedRecipe(
        path=path,
        recipe=recipe,
        toolchain=toolchains[recipe.target.toolchain],
        facts=facts,
        facts_missing=missing,
    )


def is_pins_file(path: Path) -> bool:
    """True for a toolchain pins file (``[toolchain."NAME"]`` tables, no recipe keys), as in recipes/."""
    try:
        data = tomllib.loads(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return False
    return isinstance(data.get("toolchain"), dict) and "model" not in data and "name" not in data


def _model_facts(recipe: Recipe, path: Path) -> tuple[ModelFacts | None, str | None]:
    """(facts, None), or (None, why the config.json is not at hand)."""
    model = recipe.model
    revision = model.revision
    if model.scheme == "hf":
        revision = pinned_revision(path, model.source, model.revision) or model.revision
    found = locate_model_config(model.scheme, model.location, revision)
    if found.path is None:
        return None, found.missing
    try:
        return ModelFacts.from_file(found.path), None
    except (OSError, ValueError) as exc:
        return None, f"{found.path} cannot be read: {exc}"


def _issue(file: str, p: Problem) -> RecipeIssue:
    return RecipeIssue(file, p.field, p.message, p.fix, p.value)


_TYPE_WORDS = {
    "int_type": "an integer (no quotes), e.g. 4",
    "int_from_float": "an integer, e.g. 4",
    "float_type": "a number, e.g. 0.9",
    "bool_type": "true or false (no quotes)",
    "string_type": "a quoted string",
    "list_type": 'a list of strings, e.g. ["--flag", "value"]',
    "model_type": "a table ([section])",
    "dict_type": "a table ([section])",
}


_BOUNDS = {"greater_than_equal": "≥", "greater_than": ">", "less_than_equal": "≤", "less_than": "<"}


def _issue_from_pydantic(file: str, err: ErrorDetails) -> RecipeIssue:
    loc = tuple(str(part) for part in err["loc"])
    field = ".".join(loc) or "(top level)"
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        options = _field_names(loc[:-1])
        return RecipeIssue(file, field, "unknown key", f"remove it; {did_you_mean(loc[-1], options)}", None)
    if kind == "missing":
        return RecipeIssue(
            file, field, "required key is missing", f"add `{loc[-1]} = ...` (see recipes/*.toml)"
        )
    if kind in _TYPE_WORDS:
        return RecipeIssue(
            file, field, f"wrong type ({type(value).__name__})", f"write {_TYPE_WORDS[kind]}", value
        )
    if kind == "literal_error":
        return RecipeIssue(file, field, "not an allowed value", f"use one of {err['ctx']['expected']}", value)
    if kind in _BOUNDS:
        ((bound_key, bound),) = err["ctx"].items()
        rule = f"{_BOUNDS[kind]} {bound}"
        return RecipeIssue(file, field, f"must be {rule}", f"use a value {rule}", value)
    message = err["msg"].removeprefix("Value error, ")
    return RecipeIssue(file, field, message, f"change it; the value {message}", value)


def _field_names(loc: tuple[str, ...]) -> list[str]:
    """Names of the keys allowed at ``loc`` (for did-you-mean)."""
    model: type[BaseModel] | None = Recipe
    for part in loc:
        field = model.model_fields.get(part) if model else None
        model = _model_of(field.annotation) if field else None
    return list(model.model_fields) if model else []


def _model_of(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found:
                return found
    return None
