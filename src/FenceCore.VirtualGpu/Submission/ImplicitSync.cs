using System.Buffers;
using Microsoft.Extensions.ObjectPool;

namespace FenceCore.VirtualGpu;

/// <summary>
/// Implicit sync (the kernel's <c>dma_resv</c> use in a submission): a job reads the fences its access must
/// wait for from each buffer's reservation and adds its finished fence there, as one step per buffer, and
/// under a wait-die acquire context when it touches several, so no other submission interleaves.
/// </summary>
/// <remarks>Holds no lock of its own: the reservations' and the acquire context's.</remarks>
internal static class ImplicitSync
{
    public static void Apply(GpuConfig config, GpuClient client, GpuJob job, BufferAccess[] accesses, List<Fence> deps)
    {
        if (accesses.Length == 0)
        {
            return;
        }

        int before = deps.Count;
        ApplyCore(config.InjectSkipKernelFences, client, job, accesses, deps);
        if (config.InjectImporterSkipsKernelFences)
        {
            DropKernelFencesOfImports(accesses, deps, before);
        }
    }

    /// <summary>The injected importer bug of the seed thread: a driver that ignores the KERNEL (memory
    /// management) fences of the buffers it imported, so its job may touch the exporter's memory while the
    /// exporter moves it.</summary>
    private static void DropKernelFencesOfImports(BufferAccess[] accesses, List<Fence> deps, int from)
    {
        foreach (BufferAccess a in accesses)
        {
            if (!a.Buffer.IsImported)
            {
                continue;
            }

            Fence[] kernel = a.Buffer.Reservation.GetFences(FenceUsage.Kernel);
            if (kernel.Length > 0)
            {
                for (int i = deps.Count - 1; i >= from; i--)
                {
                    if (Array.IndexOf(kernel, deps[i]) >= 0)
                    {
                        deps.RemoveAt(i);
                    }
                }
            }
        }
    }

    private static void ApplyCore(bool injectSkipKernelFences, GpuClient client, GpuJob job, BufferAccess[] accesses, List<Fence> deps)
    {
        bool skipKernel = client.ExplicitSync && injectSkipKernelFences;
        if (accesses.Length == 1 || skipKernel)
        {
            foreach (BufferAccess a in accesses)
            {
                (FenceUsage usage, FenceUsage waitFor) = Usages(client, a.Write);
                if (skipKernel)
                {
                    a.Buffer.Reservation.AddFence(job.Finished, usage); // the injected bug: no dependencies read
                }
                else
                {
                    a.Buffer.Reservation.AddFenceWithDependencies(job.Finished, usage, waitFor, deps);
                }
            }

            return;
        }

        // PERF: the reservations to lock go on the stack for up to eight buffers, else in a pooled array (LockAll
        // copies what it holds); the shared pool's rent and return cost a thread-static lookup each and a clear.
        var onStack = default(ReservationsOnStack);
        Reservation[]? rented = accesses.Length > ReservationsOnStack.Length ? ArrayPool<Reservation>.Shared.Rent(accesses.Length) : null;
        Span<Reservation> objects = rented is null ? ((Span<Reservation>)onStack)[..accesses.Length] : rented.AsSpan(0, accesses.Length);
        for (int i = 0; i < accesses.Length; i++)
        {
            objects[i] = accesses[i].Buffer.Reservation;
        }

        ReservationAcquireContext ctx = s_acquireContexts.Get();
        try
        {
            ctx.Renew();
            ctx.LockAll(objects);
            foreach (BufferAccess a in accesses)
            {
                (FenceUsage usage, FenceUsage waitFor) = Usages(client, a.Write);
                ctx.AddFence(a.Buffer.Reservation, job.Finished, usage, waitFor, deps);
            }
        }
        finally
        {
            ctx.UnlockAll();
            s_acquireContexts.Return(ctx);
            if (rented is not null)
            {
                ArrayPool<Reservation>.Shared.Return(rented, clearArray: true);
            }
        }
    }

    /// <summary>Room on the stack for the reservations of a submission of up to <see cref="Length"/> buffers.</summary>
    [System.Runtime.CompilerServices.InlineArray(Length)]
    private struct ReservationsOnStack
    {
        public const int Length = 8;

        private Reservation _first;
    }

    /// <summary>
    /// The acquire contexts of multi-buffer submissions, reused (each renewed with a fresh stamp). PERF:
    /// AcquireContextPoolBenchmarks measured Get/Return around four locks at 0.78x a new context each time,
    /// and 0 B instead of 128 B per submission.
    /// </summary>
    private static readonly ObjectPool<ReservationAcquireContext> s_acquireContexts =
        new DefaultObjectPool<ReservationAcquireContext>(new AcquireContextPolicy(), Environment.ProcessorCount * 4);

    private sealed class AcquireContextPolicy : PooledObjectPolicy<ReservationAcquireContext>
    {
        public override ReservationAcquireContext Create() => new();

        public override bool Return(ReservationAcquireContext obj) => obj.Held.Count == 0;
    }

    private static (FenceUsage Usage, FenceUsage WaitFor) Usages(GpuClient client, bool write) =>
        client.ExplicitSync
            ? (FenceUsage.Bookkeep, FenceUsage.Kernel)
            : (write ? FenceUsage.Write : FenceUsage.Read, FenceUsages.WaitLevelFor(write));
}
