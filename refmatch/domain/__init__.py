"""The domain: vocabulary, models, errors and the clock. Imports nothing else of refmatch."""
