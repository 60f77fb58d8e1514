//! Many handlers' AAS requests in flight at once. Each handler is a future
//! that awaits its answers; the serve loop polls them all, sends every line
//! they queued to in.aasd in one write, and hands the answers back. So a
//! batch of datagrams costs one round trip, and in.aasd one fsync, instead
//! of one each.

use std::cell::RefCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

use super::client::{Down, Requester};
use super::proto::Answer;

/// Where a handler's AAS requests go.
pub enum Asker<'a> {
    /// Answered at once: tests, fuzzing, probes.
    Direct(RefCell<&'a mut dyn Requester>),
    /// Queued, and answered once the serve loop has asked in.aasd.
    Queued(&'a Pipeline),
}

impl Asker<'_> {
    pub async fn ask(&self, line: &str) -> Result<Answer, Down> {
        match self {
            Asker::Direct(r) => r.borrow_mut().ask(line),
            Asker::Queued(p) => p.enqueue(line).await,
        }
    }
}

/// The requests of one batch, in the order they were made.
#[derive(Default)]
pub struct Pipeline {
    slots: RefCell<Vec<Slot>>,
}

struct Slot {
    /// Empty once handed to the serve loop.
    line: String,
    answer: Option<Result<Answer, Down>>,
}

impl Pipeline {
    fn enqueue(&self, line: &str) -> Waiting<'_> {
        let mut slots = self.slots.borrow_mut();
        slots.push(Slot {
            line: line.to_string(),
            answer: None,
        });
        Waiting {
            pipeline: self,
            slot: slots.len() - 1,
        }
    }

    /// The lines queued since the last call, with their slots.
    fn take_unsent(&self) -> (Vec<usize>, Vec<String>) {
        let mut slots = self.slots.borrow_mut();
        slots
            .iter_mut()
            .enumerate()
            .filter(|(_, s)| !s.line.is_empty())
            .map(|(i, s)| (i, std::mem::take(&mut s.line)))
            .unzip()
    }
}

/// A handler waiting for the answer in its slot.
struct Waiting<'a> {
    pipeline: &'a Pipeline,
    slot: usize,
}

impl Future for Waiting<'_> {
    type Output = Result<Answer, Down>;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        match self.pipeline.slots.borrow_mut()[self.slot].answer.take() {
            Some(a) => Poll::Ready(a),
            None => Poll::Pending,
        }
    }
}

pub type Task<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Drive every task to its end. Between rounds the lines they queued in
/// `pipeline` go to `send` together, which must answer each, in order. A
/// task that panics ends as `None`, and only it: a bug on one datagram must
/// not cost the others their answers (or, under inetd, the service).
pub fn run<T>(
    pipeline: &Pipeline,
    tasks: Vec<Task<'_, T>>,
    mut send: impl FnMut(&[String]) -> Vec<Result<Answer, Down>>,
) -> Vec<Option<T>> {
    let mut results: Vec<Option<T>> = tasks.iter().map(|_| None).collect();
    let mut live: Vec<Option<Task<'_, T>>> = tasks.into_iter().map(Some).collect();
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        for (task, result) in live.iter_mut().zip(results.iter_mut()) {
            let Some(t) = task else { continue };
            match catch_unwind(AssertUnwindSafe(|| t.as_mut().poll(&mut cx))) {
                Ok(Poll::Pending) => {}
                Ok(Poll::Ready(v)) => {
                    *result = Some(v);
                    *task = None;
                }
                Err(_) => *task = None,
            }
        }
        let (slots, lines) = pipeline.take_unsent();
        if lines.is_empty() {
            // Every task has ended: a pending one always queued a line.
            return results;
        }
        let answers = send(&lines);
        let mut all = pipeline.slots.borrow_mut();
        for (slot, answer) in slots.into_iter().zip(answers) {
            all[slot].answer = Some(answer);
        }
    }
}

/// Run a future whose requests are all [`Asker::Direct`]: it never waits.
pub fn direct<T>(f: impl Future<Output = T>) -> T {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("a direct requester answers at once"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn two_questions(aas: &Asker<'_>, name: &str) -> String {
        let a = aas.ask(&format!("ONE {name}")).await;
        let b = aas.ask(&format!("TWO {name}")).await;
        format!("{a:?}/{b:?}")
    }

    #[test]
    fn queued_requests_go_out_together_and_answers_come_back_in_order() {
        let pipeline = Pipeline::default();
        let aas = Asker::Queued(&pipeline);
        let tasks: Vec<Task<'_, String>> = ["a", "b", "c"]
            .iter()
            .map(|n| Box::pin(two_questions(&aas, n)) as Task<'_, String>)
            .collect();
        let mut rounds = Vec::new();
        let results = run(&pipeline, tasks, |lines| {
            rounds.push(lines.to_vec());
            lines
                .iter()
                .map(|l| Ok(Answer::Ok(vec![l.to_lowercase()])))
                .collect()
        });
        assert_eq!(
            rounds,
            [
                vec!["ONE a", "ONE b", "ONE c"],
                vec!["TWO a", "TWO b", "TWO c"]
            ]
        );
        assert_eq!(
            results[1].as_deref(),
            Some(r#"Ok(Ok(["one b"]))/Ok(Ok(["two b"]))"#)
        );
    }

    #[test]
    fn a_panicking_task_ends_alone() {
        let pipeline = Pipeline::default();
        let aas = Asker::Queued(&pipeline);
        async fn boom(aas: &Asker<'_>) -> u8 {
            let _ = aas.ask("X").await;
            panic!("a bug on one datagram");
        }
        async fn fine(aas: &Asker<'_>) -> u8 {
            let _ = aas.ask("Y").await;
            7
        }
        let tasks: Vec<Task<'_, u8>> = vec![Box::pin(boom(&aas)), Box::pin(fine(&aas))];
        let results = run(&pipeline, tasks, |lines| {
            lines.iter().map(|_| Err(Down("down".into()))).collect()
        });
        assert_eq!(results, [None, Some(7)]);
    }
}
