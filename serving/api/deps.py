from __future__ import annotations

from litestar.datastructures import State

from serving.service import TwinService


def provide_service(state: State) -> TwinService:
    return state.service
