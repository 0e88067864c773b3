//! The semantic cache: serves a cached answer for a prompt whose embedding is close enough to
//! a cached prompt's in the same scope, unless the correctness guard sees that the two ask
//! different things. `index` holds the vectors and finds the best unrefused candidate; `guard`
//! decides what embeddings are blind to. Embedding and the pipeline wiring live elsewhere.

pub mod guard;
pub mod index;
pub mod lookup;
