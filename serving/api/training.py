"""Training jobs and adapter versions."""

from __future__ import annotations

from litestar import Controller, get, post

from serving.service import TrainRequest, TwinService
from twin.domain import Adapter, Job


class TrainingController(Controller):
    path = "/api/authors/{author:str}"
    tags = ["training"]

    @post("/train", operation_id="startTraining", status_code=202)
    async def start_training(self, service: TwinService, author: str, data: TrainRequest) -> Job:
        return service.start_training(author, data)

    @get("/adapters", operation_id="listAdapters")
    async def list_adapters(self, service: TwinService, author: str) -> list[Adapter]:
        return service.db.list_adapters(service.author(author))

    @post("/adapters/{version:int}/activate", operation_id="activateAdapter")
    async def activate(self, service: TwinService, author: str, version: int) -> Adapter:
        return service.db.activate_adapter(service.author(author), version)
