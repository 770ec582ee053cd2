//! A WASI command, not a Joinery plugin: the gateway must refuse to load it as one.

fn main() {
    println!("not a policy");
}
