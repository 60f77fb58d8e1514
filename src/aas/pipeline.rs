//! Many handlers' AAS requests in flight at once. Each handler is a future
//! that awaits its answers; the serve loop polls them all, sends every
//! request they queued to in.aasd in one write, and hands the answers back. So a
//! batch of datagrams costs one round trip, and in.aasd one fsync, instead
//! of one each.

use std::cell::RefCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

use super::client::{Down, Requester};
use super::proto::{Reply, Request};
use crate::limits::Admission;

/// Where a handler's AAS requests go.
pub enum Asker<'a> {
    /// Answered at once: tests, fuzzing, probes.
    Direct(RefCell<&'a mut dyn Requester>),
    /// Queued, and answered once the serve loop has asked in.aasd.
    Queued(&'a Pipeline),
    /// Queued, with the limits on new clients applied to the answers.
    Limited(&'a Pipeline, Admission<'a>),
    /// Never answered: see [`without_aas`].
    Never,
}

impl Asker<'_> {
    pub async fn ask(&self, request: &Request) -> Result<Reply, Down> {
        match self {
            Asker::Direct(r) => r.borrow_mut().ask(request),
            Asker::Queued(p) => p.enqueue(request.clone()).await,
            Asker::Limited(p, admission) => admission.ask(p, request.clone()).await,
            Asker::Never => std::future::pending().await,
        }
    }
}

/// The requests of one batch, in the order they were made.
#[derive(Default)]
pub struct Pipeline {
    slots: RefCell<Vec<Slot>>,
}

struct Slot {
    /// `None` once handed to the serve loop.
    request: Option<Request>,
    answer: Option<Result<Reply, Down>>,
}

impl Pipeline {
    pub(crate) fn enqueue(
        &self,
        request: Request,
    ) -> impl Future<Output = Result<Reply, Down>> + '_ {
        let mut slots = self.slots.borrow_mut();
        slots.push(Slot {
            request: Some(request),
            answer: None,
        });
        Waiting {
            pipeline: self,
            slot: slots.len() - 1,
        }
    }

    /// The requests queued since the last call, with their slots.
    fn take_unsent(&self) -> (Vec<usize>, Vec<Request>) {
        let mut slots = self.slots.borrow_mut();
        slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| Some((i, s.request.take()?)))
            .unzip()
    }
}

/// A handler waiting for the answer in its slot.
struct Waiting<'a> {
    pipeline: &'a Pipeline,
    slot: usize,
}

impl Future for Waiting<'_> {
    type Output = Result<Reply, Down>;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        match self.pipeline.slots.borrow_mut()[self.slot].answer.take() {
            Some(a) => Poll::Ready(a),
            None => Poll::Pending,
        }
    }
}

pub type Task<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Drive every task to its end. Between rounds the requests they queued in
/// `pipeline` go to `send` together, which must answer each, in order.
/// Each task's result goes to `finished` as soon as it ends, with its
/// index, so a task that needs no AAS is not held back by those that do.
/// A task that panics ends as `None`, and only it: a bug on one datagram
/// must not cost the others their answers (or, under inetd, the service).
pub fn run<T>(
    pipeline: &Pipeline,
    tasks: Vec<Task<'_, T>>,
    mut send: impl FnMut(&[Request]) -> Vec<Result<Reply, Down>>,
    mut finished: impl FnMut(usize, Option<T>),
) {
    let mut live: Vec<Option<Task<'_, T>>> = tasks.into_iter().map(Some).collect();
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        for (i, task) in live.iter_mut().enumerate() {
            let Some(t) = task else { continue };
            match catch_unwind(AssertUnwindSafe(|| t.as_mut().poll(&mut cx))) {
                Ok(Poll::Pending) => continue,
                Ok(Poll::Ready(v)) => finished(i, Some(v)),
                Err(_) => finished(i, None),
            }
            *task = None;
        }
        let (slots, requests) = pipeline.take_unsent();
        if requests.is_empty() {
            // Every task has ended: a pending one always queued a request.
            return;
        }
        let answers = send(&requests);
        let mut all = pipeline.slots.borrow_mut();
        for (slot, answer) in slots.into_iter().zip(answers) {
            all[slot].answer = Some(answer);
        }
    }
}

/// Run a future built with [`Asker::Never`] as far as it goes without
/// the AAS: `Ready` with its result when it needed none (`None` if it
/// panicked), `Pending` when it asked.
pub fn without_aas<T>(f: impl Future<Output = T>) -> Poll<Option<T>> {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match catch_unwind(AssertUnwindSafe(|| f.as_mut().poll(&mut cx))) {
        Ok(Poll::Ready(v)) => Poll::Ready(Some(v)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(_) => Poll::Ready(None),
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

    use crate::aas::proto::Code;

    /// Two requests naming `pool`, one after the other.
    async fn two_questions(aas: &Asker<'_>, pool: &str) -> String {
        let a = aas.ask(&Request::Stats(Some(format!("one-{pool}")))).await;
        let b = aas.ask(&Request::Stats(Some(format!("two-{pool}")))).await;
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
        let mut results = vec![None; 3];
        run(
            &pipeline,
            tasks,
            |requests| {
                rounds.push(requests.iter().map(Request::to_string).collect::<Vec<_>>());
                requests
                    .iter()
                    .map(|r| {
                        Ok(Reply::Err {
                            code: Code::NoPool,
                            text: r.to_string().to_lowercase(),
                        })
                    })
                    .collect()
            },
            |i, r| results[i] = r,
        );
        assert_eq!(
            rounds,
            [
                ["STATS one-a", "STATS one-b", "STATS one-c"],
                ["STATS two-a", "STATS two-b", "STATS two-c"]
            ]
        );
        assert_eq!(
            results[1].as_deref(),
            Some(
                r#"Ok(Err { code: NoPool, text: "stats one-b" })/Ok(Err { code: NoPool, text: "stats two-b" })"#
            )
        );
    }

    #[test]
    fn a_panicking_task_ends_alone() {
        let pipeline = Pipeline::default();
        let aas = Asker::Queued(&pipeline);
        async fn boom(aas: &Asker<'_>) -> u8 {
            let _ = aas.ask(&Request::Ping).await;
            panic!("a bug on one datagram");
        }
        async fn fine(aas: &Asker<'_>) -> u8 {
            let _ = aas.ask(&Request::Pools).await;
            7
        }
        let tasks: Vec<Task<'_, u8>> = vec![Box::pin(boom(&aas)), Box::pin(fine(&aas))];
        let mut results = vec![Some(0); 2];
        run(
            &pipeline,
            tasks,
            |requests| requests.iter().map(|_| Err(Down("down".into()))).collect(),
            |i, r| results[i] = r,
        );
        assert_eq!(results, [None, Some(7)]);
    }

    #[test]
    fn a_task_that_needs_no_aas_finishes_before_the_aas_is_asked() {
        let pipeline = Pipeline::default();
        let aas = Asker::Queued(&pipeline);
        async fn statically() -> &'static str {
            "static"
        }
        async fn dynamically(aas: &Asker<'_>) -> &'static str {
            let _ = aas.ask(&Request::Pools).await;
            "dynamic"
        }
        let tasks: Vec<Task<'_, &str>> = vec![Box::pin(dynamically(&aas)), Box::pin(statically())];
        let order = RefCell::new(Vec::new());
        run(
            &pipeline,
            tasks,
            |requests| {
                order.borrow_mut().push("asked");
                requests.iter().map(|_| Err(Down("hung".into()))).collect()
            },
            |_, r| order.borrow_mut().push(r.unwrap()),
        );
        assert_eq!(*order.borrow(), ["static", "asked", "dynamic"]);
    }

    #[test]
    fn without_aas_tells_a_static_answer_from_one_that_asks() {
        async fn maybe(aas: &Asker<'_>, ask: bool) -> u8 {
            if ask {
                let _ = aas.ask(&Request::Pools).await;
            }
            1
        }
        assert_eq!(
            without_aas(maybe(&Asker::Never, false)),
            Poll::Ready(Some(1))
        );
        assert_eq!(without_aas(maybe(&Asker::Never, true)), Poll::Pending);
    }
}
