"""REST API tests against a real uvicorn server."""
