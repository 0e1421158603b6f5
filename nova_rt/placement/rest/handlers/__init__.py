"""One module per noun, as Placement's ``handlers``: each function is
``handler(req: app.Request) -> app.Response``."""
