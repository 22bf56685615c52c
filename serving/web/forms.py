"""What the page's forms post (URL-encoded): checkboxes arrive as "on" or not at all, empty inputs as "",
repeated fields as a list or, once, as a single value."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

from twin.domain import SOURCE_PLATFORMS, DraftPlatform, DraftStatus, Platform


def _empty_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _as_list(value: Any) -> Any:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


Checkbox = Annotated[bool, BeforeValidator(lambda v: v in (True, "on", "true", "1", "yes"))]
OptionalInt = Annotated[int | None, BeforeValidator(_empty_to_none)]
OptionalPlatform = Annotated[Platform | None, BeforeValidator(_empty_to_none)]


def _source_platform(platform: Platform | None) -> Platform | None:
    if platform is not None and platform not in SOURCE_PLATFORMS:
        raise ValueError(f"{platform.value!r} is not a platform a source is collected from; private chats are "
                         "imported from their export (`twin import AUTHOR FILE --private`).")
    return platform


class AuthorForm(BaseModel):
    name: str = ""
    """Checked by `twin.domain.validate_author_name` (one rule and one message for the API, page and CLI)."""


class SourceForm(BaseModel):
    url: str = Field(min_length=1)
    platform: Annotated[OptionalPlatform, AfterValidator(_source_platform)] = None
    render_js: Checkbox = False


class RemoveSourceForm(BaseModel):
    url: str


class CollectForm(BaseModel):
    urls: str = Field(default="", description="One-off links, one per line; empty collects every source.")
    render_js: Checkbox = False


class TrainForm(BaseModel):
    max_steps: OptionalInt = Field(default=None, ge=1)
    workers: OptionalInt = Field(default=None, ge=1, le=64)
    dpo: Checkbox = False


class ChatForm(BaseModel):
    author: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    links: str = ""
    platform: DraftPlatform = Platform.linkedin
    drafts: int = Field(default=1, ge=1, le=5)


class DraftTextForm(BaseModel):
    text: str = Field(min_length=1)


class DraftStatusForm(BaseModel):
    status: DraftStatus


class ScheduleForm(BaseModel):
    author: str = Field(min_length=1)
    cron: str = Field(min_length=1)
    platforms: Annotated[list[DraftPlatform], BeforeValidator(_as_list)] = Field(min_length=1)
    drafts: int = Field(default=1, ge=1, le=5)
    topics: str = ""
    collect: Checkbox = False


class LoginForm(BaseModel):
    token: str = ""
    next: str = "/"
