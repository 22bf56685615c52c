"""The relational store, one module per entity (or aggregate); `twin.store.DocumentStore` combines them."""
