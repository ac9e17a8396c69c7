fn main() {
    eprintln!("sasl-xoauth2-refresh: not built yet");
    std::process::exit(common::exit::USAGE);
}
