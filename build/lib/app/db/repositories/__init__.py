"""All SQL lives here, on ``self.session``. Repositories flush; they never commit."""
