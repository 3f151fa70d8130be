//! Embeds `public/` into the binary so the deployed server is self-contained.

fn main() {
    memory_serve::load_directory("public");
}
