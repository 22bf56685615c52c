"""Training jobs and adapter versions."""

from __future__ import annotations

from litestar import Controller, get, post

from serving.service import TrainRequest, TwinService
from twin.domain import Adapter, Job, NotFound


class TrainingController(Controller):
    path = "/api/authors/{author:str}"
    tags = ["training"]

    @post("/train", operation_id="startTraining", status_code=202)
    async def start_training(self, service: TwinService, author: str, data: TrainRequest) -> Job:
        return service.start_training(author, data)

    @post("/train/{job_id:str}/resume", operation_id="resumeTraining", status_code=202)
    async def resume_training(self, service: TwinService, author: str, job_id: str, force: bool = False) -> Job:
        """Continue a training job whose process died from its last checkpoint (``force``: also one that
        failed on an error of its own)."""
        if service.job(job_id).author_id != service.author(author).id:
            raise NotFound(f"{author} has no job {job_id}.")
        return service.resume_training(job_id, force=force)

    @get("/adapters", operation_id="listAdapters")
    async def list_adapters(self, service: TwinService, author: str) -> list[Adapter]:
        return service.db.list_adapters(service.author(author))

    @post("/adapters/{version:int}/activate", operation_id="activateAdapter")
    async def activate(self, service: TwinService, author: str, version: int) -> Adapter:
        return service.db.activate_adapter(service.author(author), version)
