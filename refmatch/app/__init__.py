"""The application layer every shell (CLI, API, UI, batch) calls: the service facade, queries, workflow, users, risk.

One style of API: the ``Service`` (``app/service.py``) holds the settings, the database
connection, the encoder and the loaded indexes; every operation is either one of its
methods (matching, import, index builds: they need its loaded state) or a function of
a module here whose first parameter is that ``Service`` (``users.add_user(service, ...)``,
``requests.transition(service, user, ...)``, ``risk.at_risk_page(service, ...)``).
Settings come from the service, never as a second argument, so a caller cannot pass a
database and settings that disagree.
"""
