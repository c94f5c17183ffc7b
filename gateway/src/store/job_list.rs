//! Listing jobs a page at a time (the operators' view of the queue).

use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Store, job};

impl Store {
    /// Up to `limit` jobs in `state` after job `after_id`, oldest first.
    pub async fn jobs_page(
        &self,
        state: &str,
        after_id: Option<i64>,
        limit: u64,
    ) -> Result<Vec<job::Model>, DbErr> {
        let mut query = job::Entity::find().filter(job::Column::State.eq(state));
        if let Some(after) = after_id {
            query = query.filter(job::Column::Id.gt(after));
        }
        query
            .order_by_asc(job::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
    }
}
