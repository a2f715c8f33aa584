"""HTTP routers, request and response schemas, dependencies."""
