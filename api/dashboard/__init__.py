"""The customer dashboard (Billing and Calls pages), served by the FastAPI app:
`app.include_router(api.dashboard.router)`."""

from api.dashboard.routes import router

__all__ = ["router"]
