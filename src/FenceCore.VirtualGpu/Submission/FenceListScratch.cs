namespace FenceCore.VirtualGpu;

/// <summary>
/// Per-thread scratch lists of fences for a submission: its dependency list, and the one the scheduler's
/// rules build from it. PERF: reused, so a submission allocates only the exact arrays it keeps.
/// </summary>
/// <remarks>
/// A list is taken, not borrowed: a dependency's poll may signal it and run its callbacks on this thread,
/// and a callback that submits re-enters the submission, which then finds the lists taken and makes its own
/// (<c>ReentrantSubmitTests</c>). Two slots, because a submission holds both lists at once. No lock: each
/// slot is thread-static.
/// </remarks>
internal static class FenceListScratch
{
    [ThreadStatic]
    private static List<Fence>? t_first;

    [ThreadStatic]
    private static List<Fence>? t_second;

    /// <summary>Takes a free list of this thread's, or a new one when both are taken.</summary>
    public static List<Fence> Rent()
    {
        List<Fence>? list = t_first;
        if (list is not null)
        {
            t_first = null;
            return list;
        }

        list = t_second;
        if (list is not null)
        {
            t_second = null;
            return list;
        }

        return new List<Fence>(16);
    }

    /// <summary>Gives a list back, emptied (it must not keep fences alive); a third one is dropped.</summary>
    public static void Return(List<Fence> list)
    {
        list.Clear();
        if (t_first is null)
        {
            t_first = list;
        }
        else
        {
            t_second ??= list;
        }
    }
}
