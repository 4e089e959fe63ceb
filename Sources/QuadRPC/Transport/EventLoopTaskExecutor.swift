internal import NIOCore

/// Runs Swift tasks on one NIO event loop. A handler started with this executor preference
/// shares its connection's thread: taking the request, running to its first real suspension and
/// answering all happen without a thread hop, and the answers of calls that finish in the same
/// loop turn leave in one socket write.
final class EventLoopTaskExecutor: TaskExecutor {
  let loop: any EventLoop

  init(_ loop: any EventLoop) {
    self.loop = loop
  }

  func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
  }
}
