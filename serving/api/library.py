"""Authors, sources, collection jobs, documents and search."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post
from litestar.params import Parameter
from pydantic import BaseModel

from serving.service import IngestRequest, SourceCreate, TwinService
from serving.uploads import UploadOperation, receive_upload
from twin.domain import Author, Document, Job, Kind, Platform, SearchHit, Source


class AuthorCreate(BaseModel):
    name: str


class DocumentSummary(BaseModel):
    id: int
    url: str
    platform: Platform
    kind: Kind
    title: str | None
    version: int
    words: int
    published_at: str | None


def summarize(d: Document) -> DocumentSummary:
    return DocumentSummary(id=d.id, url=d.url, platform=d.platform, kind=d.kind, title=d.title, version=d.version,
                           words=d.word_count, published_at=d.published_at.isoformat() if d.published_at else None)


class AuthorController(Controller):
    path = "/api/authors"
    tags = ["library"]

    @get("/", operation_id="listAuthors")
    async def list_authors(self, service: TwinService) -> list[Author]:
        return service.db.list_authors()

    @post("/", operation_id="createAuthor")
    async def create_author(self, service: TwinService, data: AuthorCreate) -> Author:
        return service.db.add_author(data.name)

    @get("/{author:str}", operation_id="getAuthor")
    async def get_author(self, service: TwinService, author: str) -> dict[str, Any]:
        person = service.author(author)
        return {"author": person, "documents": service.db.stats(person)}

    @get("/{author:str}/sources", operation_id="listSources")
    async def list_sources(self, service: TwinService, author: str) -> list[Source]:
        return service.db.list_sources(service.author(author))

    @post("/{author:str}/sources", operation_id="addSource")
    async def add_source(self, service: TwinService, author: str, data: SourceCreate) -> Source:
        return service.add_source(author, data)

    @delete("/{author:str}/sources", operation_id="removeSource", status_code=200)
    async def remove_source(self, service: TwinService, author: str, url: str) -> dict[str, int]:
        return {"removed_documents": await service.remove_source(author, url)}

    @post("/{author:str}/ingest", operation_id="startIngest", status_code=202)
    async def start_ingest(self, service: TwinService, author: str, data: IngestRequest) -> Job:
        return service.start_ingest(author, data)

    @post("/{author:str}/import", operation_id="importExport", status_code=202, request_max_body_size=None,
          operation_class=UploadOperation)
    async def import_export(
        self, request: Request[Any, Any, Any], service: TwinService, author: str, private: bool = False,
        me: str | None = None,
    ) -> Job:
        """A platform export ZIP in the form part ``data``, streamed to disk (up to
        ``TWIN_SERVE__MAX_UPLOAD_BYTES``); with ``private=true`` a WhatsApp or Telegram chat export (``me``: the
        author's name in the chat, when the export does not tell)."""
        service.author(author)  # an unknown author is a 404 before a byte of the upload is read
        upload = await receive_upload(request, service.uploads_dir, service.settings.serve.max_upload_bytes)
        return await service.start_import(author, upload.path, upload.filename, private=private, me=me)

    @get("/{author:str}/private", operation_id="listPrivateSources")
    async def list_private_sources(self, service: TwinService, author: str) -> list[dict[str, Any]]:
        from ingestion.chats import private_sources

        return private_sources(service.db, service.author(author))

    @delete("/{author:str}/private", operation_id="removePrivateSource", status_code=200)
    async def remove_private_source(self, service: TwinService, author: str, url: str) -> dict[str, Any]:
        """Remove a private chat import and everything derived from it; names the adapters trained on it."""
        removal = await service.forget_private_source(author, url)
        return removal.model_dump(mode="json")

    @get("/{author:str}/documents", operation_id="listDocuments")
    async def list_documents(
        self, service: TwinService, author: str, platform: Platform | None = None, kind: Kind | None = None
    ) -> list[DocumentSummary]:
        docs: list[Document] = service.db.list_documents(service.author(author), platform=platform, kind=kind)
        return [summarize(d) for d in docs]

    @post("/{author:str}/documents/{document_id:int}/promote", operation_id="promoteDocument", status_code=200)
    async def promote_document(self, service: TwinService, author: str, document_id: int) -> DocumentSummary:
        """Make a page linked in a chat request (stored as reference material: never a style example,
        an own-writing search hit or training data) part of the author's own writing."""
        return summarize(await service.promote_document(author, document_id))

    @get("/{author:str}/search", operation_id="search")
    async def search(
        self,
        service: TwinService,
        author: str,
        q: str,
        k: Annotated[int, Parameter(ge=1, le=50)] = 5,
        platform: Platform | None = None,
        kind: Kind | None = None,
    ) -> list[SearchHit]:
        return service.search(author, q, k=k, platform=platform, kind=kind)


class JobController(Controller):
    path = "/api/jobs"
    tags = ["jobs"]

    @get("/{job_id:str}", operation_id="getJob")
    async def get_job(self, service: TwinService, job_id: str) -> Job:
        return service.job(job_id)
