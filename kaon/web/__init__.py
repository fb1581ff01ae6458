"""The topology page at ``/ui/`` (docs/web.md).

::

    kaon.web.gate       outermost ASGI layer for /ui: the login page and static
                        files (public), the session cookie turned into the token
                        header (only for /ui paths), 401 on the page -> the login page
    kaon.web.routes     the page and its JSON: topology, live events (SSE), session,
                        trace form (501 until kaon trace lands)
    kaon.web.topology   what the page shows, read through the service layer with the
                        caller's context: a member sees what the API would show them
    kaon.web.findings   the hook for ``kaon doctor`` findings shown beside objects
    kaon.web.changes    a counter the API's writes bump, so the page hears of them at once
    kaon/web/static/    index.html, login.html, app.js, topology.js, app.css: shipped as
                        they are (package data), no JavaScript build step
"""
