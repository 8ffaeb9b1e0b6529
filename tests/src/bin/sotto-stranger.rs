//! A stranger for the browser tests: joins the relay at `origin`, writes `text` to `address`
//! without an invite (a contact request there), prints `sent`, then prints the first text that
//! comes back as `heard <text>` and exits. The browser tests drive the other side.
//!
//! Usage: sotto-stranger <origin> <address hex> <name> <text>

use sotto_shared::Address;
use sotto_tests::client::Client;
use std::time::Duration;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [origin, address, name, text] = &args[..] else {
        eprintln!("usage: sotto-stranger <origin> <address hex> <name> <text>");
        return std::process::ExitCode::from(2);
    };
    let Some(to) = Address::from_hex(address) else {
        eprintln!("not an address: {address}");
        return std::process::ExitCode::from(2);
    };
    let talk = async {
        let mut me = Client::join(origin, name).await;
        me.write_to(to).await;
        me.say(to, text).await;
        println!("sent");
        let heard = me.hear().await;
        println!("heard {heard}");
    };
    match tokio::time::timeout(Duration::from_secs(120), talk).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => {
            eprintln!("nothing came back within two minutes");
            std::process::ExitCode::FAILURE
        }
    }
}
