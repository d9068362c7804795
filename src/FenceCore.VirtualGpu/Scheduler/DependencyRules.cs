namespace FenceCore.VirtualGpu;

/// <summary>The scheduler's dependency rules (the kernel's <c>drm_sched_job_add_dependency</c> and
/// <c>drm_sched_entity_add_dependency_cb</c>). Pure: no state, no lock.</summary>
internal static class DependencyRules
{
    /// <summary>
    /// The scheduler's dependency rules: one fence per context (the later one), none of the job's own
    /// entity, none already signalled, and a same-engine finished fence replaced by its scheduled fence
    /// (the ring runs in order) unless it already carries an error.
    /// </summary>
    public static Fence[] Normalize(GpuJob job, List<Fence> deps)
    {
        if (deps.Count == 0)
        {
            return [];
        }

        // PERF: a scratch list of the thread's and one exact array for the job, instead of a list and its copy
        // per submission. Taken, not borrowed: a dependency's poll below may run a callback that submits.
        List<Fence> result = FenceListScratch.Rent();
        try
        {
            return NormalizeInto(job, deps, result);
        }
        finally
        {
            FenceListScratch.Return(result);
        }
    }

    private static Fence[] NormalizeInto(GpuJob job, List<Fence> deps, List<Fence> result)
    {
        foreach (Fence dep in deps)
        {
            Fence f = dep;
            if (f.Context == job.Entity.ScheduledContext || f.Context == job.Entity.FinishedContext || f.PollFast())
            {
                continue;
            }

            if (f is GpuFence { Kind: GpuFenceKind.Finished, Job: { } other } && ReferenceEquals(other.Engine, job.Engine) && f.Error == 0)
            {
                f = other.Scheduled;
                if (f.PollFast())
                {
                    continue;
                }
            }

            int at = 0;
            while (at < result.Count && result[at].Context != f.Context)
            {
                at++;
            }

            if (at == result.Count)
            {
                result.Add(f);
            }
            else if (Fence.IsLater(f, result[at]))
            {
                result[at] = f;
            }
        }

        return result.Count == 0 ? [] : [.. result];
    }
}
