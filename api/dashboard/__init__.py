"""The customer dashboard inside the API: `pages` (HTML), `data` (the pages' JSON and CSV,
through the API's services), `events` (the live stream, fanned out by `live`), `auth` (the
sign-in cookie), `views` (shaping for the pages). `app.include_router(api.dashboard.router)`."""

from fastapi import APIRouter

from api.dashboard import data, events, live, pages

router = APIRouter(include_in_schema=False, lifespan=live.lifespan)
for part in (pages.router, data.router, events.router):
    router.include_router(part)

__all__ = ["router"]
