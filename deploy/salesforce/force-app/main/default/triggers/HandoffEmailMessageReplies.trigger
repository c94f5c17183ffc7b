// Handoff: a rep's outbound email on a Case reaches the gateway (see HandoffReplies).
// After update too: a draft (Status '5') that is sent later fires once, when it is sent.
trigger HandoffEmailMessageReplies on EmailMessage (after insert, after update) {
    HandoffReplies.onEmailMessagesSaved(
        Trigger.new,
        Trigger.isUpdate ? (Map<Id, EmailMessage>) Trigger.oldMap : null
    );
}
