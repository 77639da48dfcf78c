"""The pytest plugin: one session object, the run plan, progress, the recorder and the verdict."""
