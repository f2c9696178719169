use timeline_core::timed;

trait Cache {
    #[timed(category = "memcache-get")]
    fn get(&self, key: &str) -> Option<String>;
}

fn main() {}
