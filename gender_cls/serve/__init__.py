"""The HTTP server: the FastAPI app and its page, the request batcher, typed settings and the Ray
Serve replicas."""
