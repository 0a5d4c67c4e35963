"""Knowledge: document collections, chunks, embeddings and vector search (RAG) per tenant."""
