"""The application layer every shell (CLI, API, UI, batch) calls: the service facade, queries, workflow, users, risk."""
