namespace VfioMigration.Core.Simulation.Devices;

/// <summary>
/// A named bug a simulated device's migration driver has, for good (unlike <see cref="SimFaults"/>, which
/// inject one failure at a chosen call): the device behaves like a defective driver everywhere the bug
/// reaches, and exactly like the clean simulator everywhere else. A conformance suite proves it catches
/// a class of driver bug by running against a device that has it (docs/simulated-host.md, "Defects").
/// </summary>
public enum SimDefect
{
    /// <summary>
    /// Pre-copy accounting that adds where it should subtract: VFIO_MIG_GET_PRECOPY_INFO reports
    /// initial_bytes as the initial data plus the bytes already read from the pre-copy fd, so it grows with
    /// every read and never reaches 0, and a VMM waiting for the initial data to drain never converges. The
    /// stream itself is right.
    /// </summary>
    PrecopyInitialBytesGrow,

    /// <summary>
    /// A wrong size estimate: VFIO_DEVICE_FEATURE_MIG_DATA_SIZE answers half the stop-copy length (at least 1)
    /// while the stream is as long as ever, so a VMM that plans downtime or buffers from it plans too little.
    /// </summary>
    DataSizeUnderReport,

    /// <summary>
    /// A use-after-end of a saving file: the arcs that end a saving session (STOP_COPY → STOP, PRE_COPY →
    /// RUNNING, PRE_COPY_P2P → RUNNING_P2P) do not disable its data fd, which goes on answering the rest of its
    /// stream and then the device's state again from the start, instead of ENODEV.
    /// </summary>
    StaleDataFdReadable,

    /// <summary>
    /// A resume path that validates nothing: RESUMING takes and discards any bytes (no header check, no size
    /// limit), and RESUMING → STOP succeeds whatever was written while loading nothing, so a corrupt, short
    /// or foreign stream "restores" silently and the device keeps the state it had.
    /// </summary>
    ResumingAcceptsGarbage,

    /// <summary>
    /// A driver that re-initialises its hardware when the device restarts: the arc from STOP that starts the
    /// device again (STOP → RUNNING, or STOP → RUNNING_P2P on its way there) replaces the device's state with
    /// a fresh one, so what was saved in STOP is no longer what runs.
    /// </summary>
    StateLostOnStopToRunning,

    /// <summary>
    /// The wrong errno for a forbidden request: a MIG_DEVICE_STATE SET the core refuses with EINVAL (a state
    /// the device does not support, ERROR, a value past the enum, or a path that runs into ERROR) answers
    /// EPERM instead. The state does not change.
    /// </summary>
    WrongErrnoForbiddenArc,

    /// <summary>
    /// An incomplete step function: the driver lacks the arcs RUNNING → STOP and RUNNING_P2P → STOP, which answer
    /// EINVAL, as does every request whose path takes one of them; the state does not change.
    /// </summary>
    MissingArc,

    /// <summary>
    /// A capability claimed and not implemented: the device advertises VFIO_MIGRATION_P2P, but every arc into
    /// RUNNING_P2P or PRE_COPY_P2P answers EINVAL (and so does every request whose path takes one); the state
    /// does not change.
    /// </summary>
    P2PClaimedButRefused,

    /// <summary>
    /// A DMA-log report without a log: DMA_LOGGING_REPORT while no START is in force answers 0 and leaves the
    /// user's bitmap untouched, instead of EINVAL, so a VMM reads "nothing dirty" where nothing was tracked.
    /// </summary>
    DmaLogReportBeforeStart,

    /// <summary>
    /// A v1 saving loop that never ends: in stop-and-copy (_SAVING without _RUNNING), once the real state is
    /// read, pending_bytes keeps answering 4096 and each data_offset / data_size cycle yields 4096 more bytes
    /// of zeros.
    /// </summary>
    V1PendingNeverZero,

    /// <summary>
    /// A missing state check: VFIO_MIG_GET_PRECOPY_INFO on a pre-copy session's fd still answers after
    /// PRE_COPY(_P2P) → STOP_COPY (initial_bytes 0, dirty_bytes the bytes left), instead of EINVAL.
    /// </summary>
    PrecopyInfoOutsidePrecopy,

    /// <summary>
    /// A stream without an end: once a saving stream's available bytes are read, read() answers EIO instead of
    /// 0 (end of file), so a reader cannot tell the end of the state from a failing device.
    /// </summary>
    NoEndOfStream,

    /// <summary>
    /// A refused request with side effects: a MIG_DEVICE_STATE SET the core refuses with EINVAL (as for
    /// <see cref="WrongErrnoForbiddenArc"/>) first moves the device to STOP along the normal path, ending its
    /// sessions as that path does, and then answers EINVAL.
    /// </summary>
    ForbiddenArcChangesState,

    /// <summary>
    /// A data fd where the UAPI says there is none: STOP_COPY → STOP returns a new readable data fd (which gives
    /// 0 bytes) instead of data_fd -1, and a VMM that trusts it leaks a descriptor.
    /// </summary>
    DataFdOnWrongArc,

    /// <summary>
    /// A stream that is not a function of the state: every stop-copy stream carries, in its last 8 bytes, a
    /// counter the driver increments per stream, so two saves of a stopped, idle device differ. The stream
    /// keeps its length, and the device still resumes from such a stream (ignoring the counter).
    /// </summary>
    SaveNotRepeatable,

    /// <summary>
    /// A v1 device_state check that is missing: a write of _RESUMING together with _SAVING (with or without
    /// _RUNNING), which VFIO_DEVICE_STATE_VALID refuses, is accepted and stored instead of refused with EINVAL.
    /// </summary>
    V1InvalidStateAccepted,
}
