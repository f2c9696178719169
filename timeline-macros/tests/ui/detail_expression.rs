use timeline_core::timed;

struct Bug {
    id: i64,
}

impl Bug {
    #[timed(detail = "bug {self.id}")]
    fn load(&self) -> i64 {
        self.id
    }
}

fn main() {
    Bug { id: 1 }.load();
}
