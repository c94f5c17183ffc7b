// Handoff: a rep's public comment on a Case reaches the customer (see HandoffReplies).
trigger HandoffCaseCommentReplies on CaseComment (after insert) {
    HandoffReplies.onCaseCommentsInserted(Trigger.new);
}
