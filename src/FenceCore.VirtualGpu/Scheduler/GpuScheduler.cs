using FenceCore.Internal;

namespace FenceCore.VirtualGpu;

/// <summary>
/// The scheduler of every engine (the kernel's <c>sched_main.c</c>): a job whose dependencies have signalled
/// becomes ready on its engine; the engine's step starts ready jobs while its ring has credits; the ring
/// completes in order, and completions drain one thread at a time so fences signal in seqno order. Also
/// the engine timeout (TDR: the guilty job ends with -ETIMEDOUT, the innocent ones on its ring with
/// -ECANCELED), the dependency timeout (-ETIME, without running), kills (-ESRCH) and device loss (-ENODEV).
/// </summary>
/// <remarks>Owns no lock: it takes the engine's <see cref="Engine.Gate"/> for the ring and ready queue and the
/// entity's <see cref="SchedEntity.Gate"/> for its queue, one at a time, and signals no fence under either.</remarks>
internal sealed class GpuScheduler(Gpu gpu)
{
    private readonly Gpu _gpu = gpu;
    private readonly long _engineTimeoutNs = (long)gpu.Config.EngineTimeout.TotalNanoseconds;
    private readonly DependencyTimeouts _dependencyTimeouts = new(gpu, (long)gpu.Config.DependencyTimeout.TotalNanoseconds);

    /// <summary>Starts the wait of the entity's new head for its dependencies. PERF: dependencies that have
    /// signalled are skipped here, and a job with none left is ready at once, with no waiter allocated (72 B);
    /// the waiter starts its walk at the first one still pending. The order of events is the same either way:
    /// a waiter that found every dependency signalled would post the job's readiness at this same point.</summary>
    internal void BeginDependencyWait(GpuJob job)
    {
        IReadOnlyList<Fence> deps = job.EffectiveDependencies;
        if (deps.Count > 0)
        {
            _gpu.Metrics.DependencyWaits.Add(1);
        }

        int first = 0;
        while (first < deps.Count && deps[first].PollFast())
        {
            first++;
        }

        if (first == deps.Count && job.Waiter is null)
        {
            JobDependenciesMet(job);
            return;
        }

        // Published with a full fence, then the phase is read: a kill (FailQueue) moves the phase by CAS before
        // it reads the waiter, so either it sees this waiter and abandons it, or this sees the job failed and
        // does; both may (the second finds the wait ended). Before, a kill between the entity's push and this
        // point left a wait armed, in the dependency timeouts' list, for a job already ended (found by Coyote,
        // DependencyTimeoutTests.TheClientIsKilledWhileTheWaitBegins_TheJobEndsWithEsrchAndNoEndedWaitIsKept).
        DependencyWaiter waiter = job.Waiter ?? new DependencyWaiter(job);
        Interlocked.Exchange(ref job.Waiter, waiter);
        waiter.Begin(first);
        if (Volatile.Read(ref job.Phase) != JobPhase.Queued)
        {
            waiter.TryAbandon();
        }
    }

    internal void ArmDependencyTimeout(DependencyWaiter waiter) => _dependencyTimeouts.Arm(waiter);

    internal void DisarmDependencyTimeout(DependencyWaiter waiter) => _dependencyTimeouts.Disarm(waiter);

    /// <summary>The waits in the dependency timeouts' list. For tests.</summary>
    internal int PendingDependencyTimeoutsForTesting => _dependencyTimeouts.PendingForTesting;

    /// <summary>The dependency timeouts themselves. For the Coyote canary.</summary>
    internal DependencyTimeouts DependencyTimeoutsForTesting => _dependencyTimeouts;

    internal void JobDependenciesMet(GpuJob job) => _gpu.Dispatcher.Post(static s => ((GpuJob)s!).Engine.Owner!.Scheduler.OnJobReady((GpuJob)s!), job);

    internal void OnDependencyTimeout(DependencyWaiter waiter)
    {
        GpuJob? job = waiter.TryAbandon();
        if (job is null)
        {
            return; // the dependencies signalled, or the job was killed, first
        }

        if (!job.TryMove(JobPhase.Queued, JobPhase.FailedBeforeStart))
        {
            return;
        }

        _gpu.Metrics.DependencyTimeouts.Add(1);
        _gpu.Hub.Raise(new GpuEvent(GpuEventKind.DependencyTimeout, _gpu.NowNs, job, job.Engine, -Errno.ETIME));
        FailJob(job, -Errno.ETIME);
        AdvanceEntity(job);
    }

    internal void OnJobReady(GpuJob job)
    {
        Engine engine = job.Engine;
        lock (engine.Gate)
        {
            SchedEntity entity = job.Entity;
            long vruntime = Math.Max(entity.VRuntime, engine.MinVRuntime);
            entity.VRuntime = vruntime;
            engine.Ready.Enqueue(job, ReadyKey.For(entity, vruntime, engine.ReadySeq++));
        }

        Kick(engine);
    }

    /// <summary>The scheduler's main step: start ready jobs while the ring has credits.</summary>
    private void Kick(Engine engine)
    {
        while (true)
        {
            GpuJob? job;
            long start;
            long now;
            bool hang;
            lock (engine.Gate)
            {
                if (_gpu.IsLost || !engine.Ready.TryPeek(out job, out ReadyKey key))
                {
                    return;
                }

                if (Volatile.Read(ref job.Phase) != JobPhase.Queued)
                {
                    engine.Ready.Dequeue(); // failed while ready (killed, timed out, device lost)
                    continue;
                }

                if (engine.CreditsInUse + job.Credits > engine.Config.CreditLimit)
                {
                    return; // ring full: credit_limit
                }

                if (!job.TryMove(JobPhase.Queued, JobPhase.Started))
                {
                    engine.Ready.Dequeue();
                    continue;
                }

                engine.Ready.Dequeue();
                engine.MinVRuntime = Math.Max(engine.MinVRuntime, key.VRuntime);
                job.Entity.VRuntime = key.VRuntime + ReadyKey.Charge(job.Entity.Priority, job.Description.DurationNs);
                engine.CreditsInUse += job.Credits;
                engine.Ring.Add(job);
                hang = job.Description.Hang;
                long duration = _gpu.Config.Mode == GpuTimeMode.Virtual ? job.Description.DurationNs : 0;
                now = _gpu.NowNs; // one reading for the hand-over, its fence and its event (see SchedFences.SignalAfter)
                start = Math.Max(now, engine.LastEndNs);
                job.StartNs = start;
                if (hang)
                {
                    engine.LastEndNs = long.MaxValue / 4; // the ring stalls behind a hung job
                }
                else
                {
                    job.EndNs = start + duration;
                    engine.LastEndNs = job.EndNs;
                }

                job.HandedToRingNs = now;
                job.Hardware = new GpuFence(engine.RingContext, ++engine.NextRingSeqno, job);
                job.AssertInvariants();
            }

            _gpu.Leaks.CheckStorage(job, start);
            _gpu.Fences.SignalAfter(job.PreviousScheduled, job.Scheduled, 0, job: null, now);
            _gpu.Hub.Raise(new GpuEvent(GpuEventKind.JobStarted, now, job, engine, 0));
            AdvanceEntity(job);

            if (start >= long.MaxValue / 8)
            {
                continue; // stalled behind a hung job: the reset that clears the hang cancels it too
            }

            if (hang || job.Description.DurationNs >= _engineTimeoutNs)
            {
                // TDR: armed from when the job starts executing.
                _gpu.Dispatcher.PostAt(start + _engineTimeoutNs, static s => ((GpuJob)s!).Engine.Owner!.Scheduler.OnEngineTimeout((GpuJob)s!), job);
            }

            if (!hang)
            {
                _gpu.Dispatcher.PostAt(job.EndNs, static s => ((GpuJob)s!).Engine.Owner!.Scheduler.OnHardwareDone((GpuJob)s!), job);
            }
        }
    }

    internal void AdvanceEntity(GpuJob job)
    {
        SchedEntity entity = job.Entity;
        GpuJob? next = null;
        lock (entity.Gate)
        {
            if (entity.Queue.TryPeek(out GpuJob? head) && ReferenceEquals(head, job))
            {
                entity.Queue.Dequeue();
                entity.Queue.TryPeek(out next);
            }
        }

        if (next is not null)
        {
            BeginDependencyWait(next);
        }
    }

    internal void OnHardwareDone(GpuJob job) => DrainCompleted(job.Engine, finished: job);

    internal void OnEngineTimeout(GpuJob job)
    {
        Engine engine = job.Engine;
        lock (engine.Gate)
        {
            if (Volatile.Read(ref job.Phase) != JobPhase.Started || !engine.Ring.Contains(job))
            {
                return; // finished in time, or already reset
            }

            // Reset: the head is guilty, everything else on the ring is an innocent casualty.
            for (int i = 0; i < engine.Ring.Count; i++)
            {
                GpuJob j = engine.Ring[i];
                j.PendingError = i == 0 ? -Errno.ETIMEDOUT : -Errno.ECANCELED;
                j.Move(JobPhase.HardwareDone);
            }

            engine.LastEndNs = _gpu.NowNs;
            engine.Resets++;
        }

        _gpu.Metrics.EngineResets.Add(1);
        _gpu.Hub.Raise(new GpuEvent(GpuEventKind.EngineReset, _gpu.NowNs, job, engine, -Errno.ETIMEDOUT));
        DrainCompleted(engine);
    }

    /// <summary>Moves finished ring jobs to the completion queue in ring order and signals them, one
    /// drainer at a time, so ring and entity fences signal in seqno order on any number of workers.
    /// <paramref name="finished"/>, when given, is a job whose ring work just ended: it is marked so under
    /// the engine's gate, in the same step that looks at the ring.</summary>
    internal void DrainCompleted(Engine engine, GpuJob? finished = null)
    {
        lock (engine.Gate)
        {
            if (finished is not null && Volatile.Read(ref finished.Phase) == JobPhase.Started)
            {
                finished.Move(JobPhase.HardwareDone); // a reset may have ended it first
            }

            while (engine.Ring.Count > 0 && Volatile.Read(ref engine.Ring[0].Phase) == JobPhase.HardwareDone)
            {
                GpuJob j = engine.Ring[0];
                engine.Ring.RemoveAt(0);
                engine.CreditsInUse -= j.Credits;
                engine.Completed.Enqueue(j);
            }
        }

        engine.Drainer.Drain(new CompletedJobs(this, engine));

        Kick(engine);
    }

    /// <summary>An engine's completed jobs, as its serial drain sees them.</summary>
    private readonly struct CompletedJobs(GpuScheduler scheduler, Engine engine) : ISerialDrainWork
    {
        public bool TakeOne() => scheduler.SignalNextCompleted(engine);

        public bool HasWork()
        {
            lock (engine.Gate)
            {
                return engine.Completed.Count > 0;
            }
        }
    }

    /// <summary>Signals the oldest completed job of the engine; false when none is left. Runs under the engine's
    /// <see cref="Engine.Drainer"/>, so one thread at a time, in ring order.</summary>
    internal bool SignalNextCompleted(Engine engine)
    {
        GpuJob? j;
        lock (engine.Gate)
        {
            if (!engine.Completed.TryDequeue(out j))
            {
                return false;
            }
        }

        int error = j.PendingError;
        j.Move(JobPhase.Done);
        Interlocked.Decrement(ref engine.Score);

        // Consumers' exceptions are caught where they are thrown (GpuFence.OnCallbackFailed, Raise):
        // nothing a callback or subscriber does comes back here.
        long now = _gpu.NowNs; // one reading for both fences and the completion (see SchedFences.SignalAfter)
        j.Hardware!.SignalAt(error, now);
        _gpu.Fences.SignalAfter(j.PreviousFinished, j.Finished, error, j, now);
        return true;
    }

    /// <summary>
    /// Ends a job that never ran with <paramref name="error"/>. Like every scheduled and finished fence,
    /// they signal only after the entity's previous ones (<see cref="SchedFences.SignalAfter"/>).
    /// </summary>
    internal void FailJob(GpuJob job, int error)
    {
        job.Move(JobPhase.Done);
        Interlocked.Decrement(ref job.Engine.Score);
        long now = _gpu.NowNs;
        _gpu.Fences.SignalAfter(job.PreviousScheduled, job.Scheduled, error, job: null, now);
        _gpu.Fences.SignalAfter(job.PreviousFinished, job.Finished, error, job, now);
    }

    internal void FailQueue(SchedEntity entity, int error, bool markKilled)
    {
        GpuJob[] queued;
        lock (entity.Gate)
        {
            entity.Killed |= markKilled;
            queued = [.. entity.Queue];
            entity.Queue.Clear();
        }

        foreach (GpuJob job in queued)
        {
            if (job.TryMove(JobPhase.Queued, JobPhase.FailedBeforeStart))
            {
                // Read after the phase CAS (a full fence): see BeginDependencyWait for the other side.
                Volatile.Read(ref job.Waiter)?.TryAbandon(); // also unlinks it from the fence it waits on
                FailJob(job, error);
            }
        }
    }

    /// <summary>Kills entities (<c>drm_sched_entity_kill</c>): their queued jobs end with <paramref name="error"/>,
    /// in order; running jobs finish; later pushes fail at once.</summary>
    internal void Kill(IEnumerable<SchedEntity> entities, int error)
    {
        foreach (SchedEntity entity in entities)
        {
            FailQueue(entity, error, markKilled: true);
        }
    }

    /// <summary>Device loss: every ring job ends with <paramref name="error"/> (drained in ring order), then
    /// every queued job of every entity, the memory manager's included.</summary>
    internal void EndEverything(int error)
    {
        foreach (Engine engine in _gpu.Engines)
        {
            lock (engine.Gate)
            {
                foreach (GpuJob j in engine.Ring)
                {
                    j.PendingError = error;
                    j.Move(JobPhase.HardwareDone);
                }
            }

            DrainCompleted(engine);
        }

        foreach (GpuClient client in _gpu.Clients)
        {
            foreach (SchedEntity entity in client.Entities)
            {
                FailQueue(entity, error, markKilled: true);
            }
        }

        FailQueue(_gpu.KernelEntity, error, markKilled: true);
    }
}
