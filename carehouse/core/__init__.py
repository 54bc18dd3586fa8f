"""Settings, the tools' environment, connections and the bootstrap: below every other package."""
