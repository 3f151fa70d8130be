//! Load generator for the meshchat room protocol (placeholder until the benchmark issue).

fn main() {
    println!("loadgen: not written yet");
}
