//! The admin of a big group, for the join benchmark (tests/browser/group-join.mjs): joins the
//! relay at `origin`, makes a group of `members` who never come online (see
//! `Messenger::add_absent_members`), opens a link into it and prints `link <url>`; then lets in
//! whoever asks, printing `joined` for each, and prints `heard <text>` for each text in the group.
//!
//! Usage: sotto-group-admin <origin> <members>

use sotto_engine::Identity;
use sotto_engine::random::OsEntropy;
use sotto_messenger::doors::{DoorRules, GROUP_LINK_PATH};
use sotto_messenger::{ConversationId, Event};
use sotto_tests::client::{Client, now};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [origin, members] = &args[..] else {
        eprintln!("usage: sotto-group-admin <origin> <members>");
        return std::process::ExitCode::from(2);
    };
    let Ok(members) = members.parse::<usize>() else {
        eprintln!("not a number: {members}");
        return std::process::ExitCode::from(2);
    };
    let mut admin = Client::join(origin, "Admin").await;
    let (chat, fx) = admin.d.messenger.create_group("Town", now(), &mut OsEntropy).expect("a group");
    let step = admin.d.apply(fx);
    admin.run(step).await;
    let ConversationId::Group(group) = chat else { unreachable!("a group chat") };
    let absent: Vec<_> = (0..members).map(|_| Identity::generate().expect("an identity").public()).collect();
    let step = admin.d.act(|m| m.add_absent_members(&group, &absent, &mut OsEntropy)).expect("members");
    admin.run(step).await;
    let (text, fx) = admin
        .d
        .messenger
        .open_group_link(&group, DoorRules::default(), origin, &mut OsEntropy)
        .expect("a link");
    let step = admin.d.apply(fx);
    admin.run(step).await;
    println!("link {}/{GROUP_LINK_PATH}{text}", origin.trim_end_matches('/'));
    let mut size = admin.d.messenger.group(&group).map_or(0, |g| g.group.roster().members.len());
    loop {
        for event in admin.pump().await {
            if let Event::Message { text, .. } = event {
                println!("heard {text}");
            }
        }
        let now_size = admin.d.messenger.group(&group).map_or(0, |g| g.group.roster().members.len());
        if now_size > size {
            println!("joined");
            size = now_size;
        }
    }
}
