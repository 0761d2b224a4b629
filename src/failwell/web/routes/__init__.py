"""The app's routes, one module per area; each ``add_routes(app, site)``
registers its routes on the app (flat, so the route table lists them all)."""
