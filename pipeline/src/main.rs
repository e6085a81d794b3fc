fn main() {
    println!("texaug");
}
