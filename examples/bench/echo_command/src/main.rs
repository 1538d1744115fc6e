//! `echo_command`: the trivial step as a plain WASI command, for the
//! `wasmtime run` peer of `stephost bench suite`: reads the event from
//! stdin, parses it and prints it back.
use std::io::Read;

fn main() {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).expect("reading the event from stdin");
    let event: serde_json::Value = serde_json::from_str(&text).expect("the event is JSON");
    println!("{event}");
}
