//! Two functions and their tests.

pub fn greeting(name: &str) -> String {
    format!("hello, {name}")
}

pub fn sum(v: &[i32]) -> i32 {
    v.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums() {
        let v: Vec<i32> = (1..=4).collect();
        assert_eq!(sum(&v), 10);
    }

    #[test]
    fn greets() {
        let s = greeting("world");
        assert_eq!(s, "hello, world");
        #[cfg(feature = "leak")]
        std::mem::forget(s);
    }
}
