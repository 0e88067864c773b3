//! Build script: rebuilds the crate when a migration is added, so that `sqlx::migrate!` embeds
//! it (the macro tracks the files it saw, not new ones).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
