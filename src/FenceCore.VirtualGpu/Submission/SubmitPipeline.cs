namespace FenceCore.VirtualGpu;

/// <summary>
/// The submit pipeline (a command submission ioctl with <c>drm_exec</c>-style locking): checks the job,
/// places and pins its buffers, arms it on its entity (engine, seqno, scheduled and finished fences), does
/// implicit sync and adds the explicit dependencies, pushes it, and starts its dependency wait when it is
/// the entity's head. The memory manager's kernel jobs go through the same arm and push steps.
/// </summary>
/// <remarks>Owns no lock: arming and pushing happen under the entity's <see cref="SchedEntity.Gate"/>,
/// placement under the memory manager's. <see cref="_nextJobId"/> is taken with Interlocked.</remarks>
internal sealed class SubmitPipeline(Gpu gpu)
{
    private readonly Gpu _gpu = gpu;

    /// <summary>The last job id handed out: Interlocked increments, read with Interlocked.Read.</summary>
    private long _nextJobId;

    public long JobsSubmitted => Interlocked.Read(ref _nextJobId);

    /// <summary>
    /// Submits a job: places its buffers (moves and clears on a copy engine add KERNEL fences), arms it on
    /// its entity, does implicit sync (reads its dependencies and adds its finished fence on every buffer
    /// as one step, under a wait-die acquire context when it touches several), and pushes it.
    /// </summary>
    /// <exception cref="FenceErrnoException">Each case <see cref="Gpu.Submit"/> lists (-ENODEV, -EINVAL,
    /// -ENOMEM, -EBUSY).</exception>
    public GpuJob Submit(GpuClient client, JobDescription desc)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(desc);
        if (!ReferenceEquals(client.Gpu, _gpu))
        {
            throw new ArgumentException("The client belongs to another GPU.", nameof(client));
        }

        ValidateDescription(desc);
        if (_gpu.IsLost)
        {
            throw new FenceErrnoException(-Errno.ENODEV, "The device is lost: no job can be submitted");
        }

        SchedEntity entity = client.EntityFor(desc.Engine);
        Fence[] syncObjDeps = ResolveSyncObjWaits(desc.SyncObjWaits); // fails before any side effect
        BufferAccess[] accesses = Deduplicate(desc.BufferArray);
        CheckDevice(accesses, nameof(desc));

        // 1. Memory: make every buffer resident and pin it until its fence is in place; imports are mapped
        // and pinned on their exporters, after this device's lock is released.
        Fence?[] storage = _gpu.Memory.PinForSubmission(accesses, out long pinTicket);

        // One failure path from here on: whatever throws after the job is armed fails the job with
        // -ECANCELED (its fences signal, so no reservation keeps an unsignalled fence) and unpins.
        GpuJob? armed = null;
        Pushed pushed;
        try
        {
            lock (entity.Gate)
            {
                // 2. Arm: pick the engine (load balancing only when idle), take the next seqno, create fences.
                armed = Arm(entity, desc);
                armed.StorageFences = storage;
                armed.Accesses = accesses;

                // 3. Implicit sync, then the explicit dependencies, gathered in the thread's scratch list (taken,
                // so a submission re-entered from a dependency's callback gets its own), then kept as one exact
                // array. PERF: 120 B of list and spare capacity per job became 24 B plus 8 per dependency.
                List<Fence> deps = FenceListScratch.Rent();
                try
                {
                    ImplicitSync.Apply(_gpu.Config, client, armed, accesses, deps);
                    _gpu.AfterArmForTesting?.Invoke(armed); // the job's fence is now in its buffers' reservations
                    armed.ImplicitDependencyCount = deps.Count;
                    AddExplicit(desc.Dependencies, deps);
                    for (int i = 0; i < desc.SyncFiles.Count; i++)
                    {
                        AddLeaves(desc.SyncFiles[i].Fence, deps);
                    }

                    AddExplicit(syncObjDeps, deps);
                    // PERF: ToArray, not a collection expression: [.. deps] aimed at IReadOnlyList wraps the array in
                    // a read-only list (24 B more per job).
                    armed.SubmittedDependencies = deps.Count == 0 ? [] : deps.ToArray();
                    armed.EffectiveDependencies = DependencyRules.Normalize(armed, deps);
                }
                finally
                {
                    FenceListScratch.Return(deps);
                }

                // 4. Push.
                pushed = Push(entity, armed);
            }
        }
        catch (Exception)
        {
            if (armed is not null && armed.TryMove(JobPhase.Queued, JobPhase.FailedBeforeStart))
            {
                _gpu.Scheduler.FailJob(armed, -Errno.ECANCELED);
            }

            _gpu.Memory.UnpinSubmission(accesses, pinTicket);
            throw;
        }

        GpuJob job = armed;
        _gpu.Memory.UnpinSubmission(accesses, pinTicket);

        foreach (SyncObjPoint signal in desc.SyncObjSignals)
        {
            if (signal.Point == 0)
            {
                signal.SyncObj.Replace(job.Finished);
            }
            else
            {
                signal.SyncObj.AddPoint(signal.Point, job.Finished);
            }
        }

        _gpu.Metrics.JobsSubmitted.Add(1);
        Announce(job, pushed, buffer: null);
        return job;
    }

    /// <summary>What <see cref="Push"/> did with a job.</summary>
    private enum Pushed
    {
        /// <summary>Queued behind the entity's earlier jobs: its wait begins when it becomes the head.</summary>
        Queued,

        /// <summary>Queued as the entity's head: its dependency wait begins now.</summary>
        Head,

        /// <summary>Refused: the entity had been killed; the job is marked failed and <see cref="Announce"/> fails it.</summary>
        Refused,
    }

    /// <summary>Queues an armed job on its entity, under the entity's gate. An entity killed meanwhile takes no
    /// job: it is marked failed and <see cref="Announce"/> fails it.</summary>
    private static Pushed Push(SchedEntity entity, GpuJob job)
    {
        if (entity.Killed)
        {
            job.Move(JobPhase.FailedBeforeStart);
            return Pushed.Refused;
        }

        entity.Queue.Enqueue(job);
        return entity.Queue.Count == 1 ? Pushed.Head : Pushed.Queued;
    }

    /// <summary>After the push, outside every lock: the submitted event, then the job's dependency wait if
    /// it is its entity's head, or its failure if its entity was killed meanwhile (by a kill, -ESRCH, or by
    /// device loss, -ENODEV, which sets the lost flag first).</summary>
    /// <remarks>Only a job its push refused is failed here. One that a kill or device loss fails after its push
    /// is failed by that kill, which took it from the entity's queue. Before, this looked at the phase instead,
    /// and a kill on another thread that had moved the job to failed but not yet to done was followed by a
    /// second failure of the same job here: two completions (found by Coyote,
    /// DependencyTimeoutTests.TheClientIsKilledWhileTheWaitBegins_TheJobEndsWithEsrchAndNoEndedWaitIsKept).</remarks>
    private void Announce(GpuJob job, Pushed pushed, GpuBuffer? buffer)
    {
        // At the submission's time (its arming's reading of the clock; the same time in virtual mode, where the clock
        // does not move within a step). PERF: one reading of the clock less per job in threads mode.
        _gpu.Hub.Raise(new GpuEvent(GpuEventKind.JobSubmitted, job.SubmitNs, job, job.Engine, 0, buffer));
        if (pushed == Pushed.Refused)
        {
            _gpu.Scheduler.FailJob(job, _gpu.IsLost ? -Errno.ENODEV : -Errno.ESRCH);
        }
        else if (pushed == Pushed.Head)
        {
            _gpu.Scheduler.BeginDependencyWait(job);
        }
    }

    /// <summary>Every buffer must be this device's own or imported into it: another device's buffer is
    /// reached only through an import, which carries the attachment (pinned or dynamic) the access needs.</summary>
    private void CheckDevice(BufferAccess[] accesses, string paramName)
    {
        for (int i = 0; i < accesses.Length; i++)
        {
            GpuBuffer b = accesses[i].Buffer;
            if (!ReferenceEquals(b.Device, _gpu))
            {
                throw new ArgumentException(
                    $"Buffer access {i} is {b.Name} of {b.Device.Name}, not of {_gpu.Name}: export it (Gpu.Export) and import the dma-buf into {_gpu.Name} (Gpu.Import) first.", paramName);
            }

            if (b.IsImported && b.Detached)
            {
                throw new ArgumentException($"Buffer access {i} is {b.Name}, an import that was detached (Gpu.Detach); import the dma-buf again.", paramName);
            }
        }
    }

    private static void ValidateDescription(JobDescription desc)
    {
        if (desc.DurationNs < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(desc), desc.Duration, "JobDescription.Duration must not be negative.");
        }

        if (desc.Credits < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(desc), desc.Credits, "A job takes at least one credit.");
        }

        for (int i = 0; i < desc.Buffers.Count; i++)
        {
            if (desc.Buffers[i].Buffer is null)
            {
                throw new ArgumentException($"Buffer access {i} has no buffer.", nameof(desc));
            }
        }

        for (int i = 0; i < desc.SyncFiles.Count; i++)
        {
            if (desc.SyncFiles[i] is null)
            {
                throw new ArgumentException($"Sync file {i} is null.", nameof(desc));
            }
        }

        for (int i = 0; i < desc.SyncObjSignals.Count; i++)
        {
            if (desc.SyncObjSignals[i].SyncObj is null)
            {
                throw new ArgumentException($"Syncobj signal {i} has no syncobj.", nameof(desc));
            }
        }

        for (int i = 0; i < desc.Dependencies.Count; i++)
        {
            if (desc.Dependencies[i] is null)
            {
                throw new ArgumentException($"Dependency {i} is null.", nameof(desc));
            }
        }
    }

    private static Fence[] ResolveSyncObjWaits(IReadOnlyList<SyncObjPoint> waits)
    {
        if (waits.Count == 0)
        {
            return [];
        }

        var fences = new Fence[waits.Count];
        for (int i = 0; i < waits.Count; i++)
        {
            SyncObjPoint w = waits[i];
            if (w.SyncObj is null || !w.SyncObj.TryFindFence(w.Point, out Fence? f))
            {
                throw new FenceErrnoException(-Errno.EINVAL, $"Syncobj wait {i} (point {w.Point}) has not been submitted; a submission cannot wait for a future point");
            }

            fences[i] = f!;
        }

        return fences;
    }

    /// <summary>One access per buffer, a write dominating a read of the same buffer. PERF: the description's
    /// own copy itself when no buffer is listed twice (the usual case), so a job adds no array of its own.</summary>
    private static BufferAccess[] Deduplicate(BufferAccess[] buffers)
    {
        if (!HasDuplicate(buffers))
        {
            return buffers; // the description's copy: never written after its init, safe to share
        }

        var result = new BufferAccess[buffers.Length];
        int n = 0;
        foreach (BufferAccess a in buffers)
        {
            int at = 0;
            while (at < n && !ReferenceEquals(result[at].Buffer, a.Buffer))
            {
                at++;
            }

            if (at == n)
            {
                result[n++] = a;
            }
            else if (a.Write)
            {
                result[at] = a; // a write dominates a read of the same buffer
            }
        }

        return result[..n];
    }

    private static bool HasDuplicate(BufferAccess[] buffers)
    {
        for (int i = 1; i < buffers.Length; i++)
        {
            for (int j = 0; j < i; j++)
            {
                if (ReferenceEquals(buffers[i].Buffer, buffers[j].Buffer))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private GpuJob Arm(SchedEntity entity, JobDescription desc)
    {
        if (entity.Queue.Count == 0 && (entity.LastFinished is null || entity.LastFinished.IsSignaled))
        {
            entity.CurrentEngine = PickBest(entity.Engines); // drm_sched_pick_best, only when idle
        }

        long id = Interlocked.Increment(ref _nextJobId);
        var job = new GpuJob(id, entity, desc)
        {
            SubmitNs = _gpu.NowNs,
            Engine = entity.CurrentEngine,
            Credits = Math.Min(desc.Credits, entity.CurrentEngine.Config.CreditLimit),
        };
        ulong seqno = ++entity.NextSeqno;
        job.Scheduled = new GpuFence(entity.ScheduledContext, seqno, job);
        job.Finished = new GpuFence(entity.FinishedContext, seqno, job);
        job.PreviousFinished = entity.LastFinished; // and with it the previous job's scheduled fence
        entity.LastFinished = job.Finished;
        Interlocked.Increment(ref entity.CurrentEngine.Score);
        return job;
    }

    private static Engine PickBest(IReadOnlyList<Engine> engines)
    {
        Engine best = engines[0];
        for (int i = 1; i < engines.Count; i++)
        {
            if (Volatile.Read(ref engines[i].Score) < Volatile.Read(ref best.Score))
            {
                best = engines[i];
            }
        }

        return best;
    }

    private static void AddExplicit(IReadOnlyList<Fence> explicitDeps, List<Fence> deps)
    {
        for (int i = 0; i < explicitDeps.Count; i++)
        {
            AddLeaves(explicitDeps[i], deps);
        }
    }

    private static void AddLeaves(Fence f, List<Fence> deps)
    {
        foreach (Fence leaf in FenceUnwrap.ForEach(f))
        {
            deps.Add(leaf);
        }
    }

    internal GpuJob SubmitKernelJob(GpuBuffer buffer, List<Fence>? extraDeps, string label)
    {
        long durationNs = Math.Max(1, buffer.Size / _gpu.Config.CopyBytesPerMicrosecond) * 1000;
        var desc = new JobDescription { Engine = EngineKind.Copy, DurationNs = durationNs, Label = label };
        GpuJob job;
        Pushed pushed;
        lock (_gpu.KernelEntity.Gate)
        {
            job = Arm(_gpu.KernelEntity, desc);
            List<Fence> deps = FenceListScratch.Rent();
            try
            {
                if (extraDeps is not null)
                {
                    deps.AddRange(extraDeps);
                }

                // A move waits for everything on the buffer, bookkeeping included, and is itself a KERNEL fence.
                buffer.Reservation.AddFenceWithDependencies(job.Finished, FenceUsage.Kernel, FenceUsage.Bookkeep, deps);
                job.EffectiveDependencies = DependencyRules.Normalize(job, deps);
            }
            finally
            {
                FenceListScratch.Return(deps);
            }
            pushed = Push(_gpu.KernelEntity, job); // killed only by device loss: the move fails, its fence signals
        }

        _gpu.Metrics.Moves.Add(1);
        Announce(job, pushed, buffer);
        return job;
    }
}
