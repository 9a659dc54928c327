// Go's version compiles, and its second Read fails at run time with
// "use of closed network connection". Rust's does not compile.
use std::io::Read;
use std::net::TcpStream;

fn handle(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = [0; 1024];
    let n = stream.read(&mut buf)?;
    println!("read {n} bytes");
    drop(stream); // close the connection
    stream.read(&mut buf)?; // use it again
    Ok(())
}

fn main() {
    let _ = handle;
}
