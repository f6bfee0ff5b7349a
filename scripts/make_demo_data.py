#!/usr/bin/env python3
"""Generate refmatch's demo dataset (refmatch/demo_data) from the Irish Times Top 1000.

    python3 scripts/make_demo_data.py [--seed 7] [--out refmatch/demo_data] [--source CSV]

Source: irish_times_top1000_companies.csv ("Irish Times Top 1000 companies spreadsheet by
Alice Corona (github.com/ali-ce/datasets), CC BY-SA 4.0"), looked up in shared/data inside
or beside the repository unless --source names it. Rows without a description are skipped.

REAL (cleaned): name, industry, employees, profile (the description) and country. GENERATED
(fictional): everything else, see COLUMNS, which README.md is rendered from. Steps, each
with its own seeded random.Random:
1. stages dealt by quota, later stages entered longer ago; products follow the industry.
2. needs drawn from CATALOGUE, each a canonical statement plus two paraphrases: open needs
   use wording 0 (or 1), met needs wording 2 (or 1), so open and met rarely share a string.
3. planted cases: CATALOGUE lines whose industry is "@Category" are reserved. Per case one
   prospect of that industry gets exactly those needs open and one healthy value/expansion
   customer of the same industry owning the product gets all of them met (paraphrased) and
   an advocate row accepting calls; no other account gets them (known_matches.json).
4. ~12% of customers are at risk: low, falling health and usage, rising tickets, an open
   escalation, a detractor NPS, sometimes a champion who left.
Deterministic: TODAY is a constant, iteration is sorted, RNGs are seeded, so a rerun with
the same seed and source writes byte-identical files.
"""

import argparse
import csv
import datetime as dt
import hashlib
import io
import json
import random
import re
import unicodedata
from pathlib import Path

TODAY = dt.date(2026, 11, 27)  # fixed "today" of the demo; never date.today()
DATA_START, DATA_END = dt.date(2022, 1, 1), dt.date(2026, 10, 31)
SIGNALS_END = dt.date(2026, 11, 1)
REPO = Path(__file__).resolve().parent.parent
SOURCE_NAME = "irish_times_top1000_companies.csv"
SOURCE_DIRS = [REPO / "shared" / "data", REPO.parent / "shared" / "data"]
FILES = ["accounts.csv", "needs.csv", "advocates.csv", "signals.csv", "churn.csv", "requests.csv", "known_matches.json",
         "README.md", "LICENSE.txt"]  # fmt: skip
# former customers: they left between these days, after months of warning signs (most of them)
CHURN_START, CHURN_END, CHURN_COUNT = dt.date(2026, 5, 20), dt.date(2026, 11, 20), 60
CHURN_REASONS = ["budget cut", "moved to a competitor", "project cancelled", "acquired by a group on another system",
                 "poor adoption", "price"]  # fmt: skip
RECOVERY_SHARE = 0.5  # of consenting advocates: an episode of trouble in their signal history, overcome since
# at-risk accounts and recovered advocates each have some of these troubles (the risk rules' names for them)
TROUBLES = ["falling usage", "poor health", "support backlog", "escalations"]
SECTOR = {  # source Category -> what the profile calls the company
    "Transport": "transport company", "Financial Services Aviation": "aviation finance and leasing firm",
    "Retailing": "retailer", "Tourism": "tourism and hospitality business", "Food": "food producer",
    "Agribusiness": "agribusiness", "Manufacturing": "manufacturer", "Pharma": "pharmaceutical company",
    "Health": "healthcare provider", "Technology": "technology company",
    "Business Technology": "business technology company", "Consumer Technology": "consumer technology company",
    "Communications": "communications company", "Media And Marketing": "media and marketing business",
    "Financial Services": "financial services firm", "Financial Services Banking": "bank",
    "Financial Services Insurance": "insurer", "Professional Services": "professional services firm",
    "Professional Services Consultancy": "consultancy", "Professional Services Accountancy": "accountancy practice",
    "Professional Services Law": "law firm", "Construction": "construction company", "Energy": "energy company",
    "Resources": "natural resources company", "Property": "property company",
}  # fmt: skip
# past reference requests: before the current quarter and the 90 days fatigue looks back over, so that
# matching on the demo is as it was; a few open ones from the last days are overdue
HISTORY_START, HISTORY_END = dt.date(2025, 6, 2), dt.date(2026, 8, 20)
HISTORY_COUNT, OPEN_COUNT = 180, 6

STAGES = ["prospect", "onboarding", "adoption", "value", "expansion"]
STAGE_SHARE = {"prospect": 0.30, "onboarding": 0.12, "adoption": 0.18, "value": 0.22, "expansion": 0.18}
STAGE_AGE_DAYS = {
    "prospect": (0, 270),
    "onboarding": (14, 180),
    "adoption": (120, 640),
    "value": (300, 1100),
    "expansion": (500, 1764),
}  # days before DATA_END
HEALTH_MEAN = {"onboarding": 70, "adoption": 72, "value": 78, "expansion": 82}
NEED_STATUS = {
    "onboarding": (0.15, 0.50),
    "adoption": (0.55, 0.25),
    "value": (0.80, 0.10),
    "expansion": (0.88, 0.06),
    "at_risk": (0.35, 0.25),
}  # (P(met), P(in_progress))
NEED_COUNT = {"prospect": (2, 4), "onboarding": (2, 4), "adoption": (2, 5), "value": (3, 6), "expansion": (3, 6)}
AT_RISK_SHARE, ADVOCATE_SHARE = 0.12, 0.40

PRODUCTS = {
    "Ledger": "finance and ERP",
    "Flow WMS": "warehouse and logistics",
    "Shield": "security, identity and SSO",
    "Insight": "analytics and BI",
    "Connect": "field service and CRM",
}
GROUP = {  # source Category -> industry group used for products and needs
    "Transport": "logistics",
    "Financial Services Aviation": "logistics",
    "Retailing": "retail",
    "Tourism": "retail",
    "Food": "food",
    "Agribusiness": "food",
    "Manufacturing": "industrial",
    "Pharma": "lifesci",
    "Health": "lifesci",
    "Technology": "tech",
    "Business Technology": "tech",
    "Consumer Technology": "tech",
    "Communications": "tech",
    "Media And Marketing": "tech",
    "Financial Services": "finance",
    "Financial Services Banking": "finance",
    "Financial Services Insurance": "finance",
    "Professional Services": "services",
    "Professional Services Consultancy": "services",
    "Professional Services Accountancy": "services",
    "Professional Services Law": "services",
    "Construction": "field",
    "Energy": "field",
    "Resources": "field",
    "Property": "field",
}
PRODUCT_WEIGHTS = {  # Ledger, Flow WMS, Shield, Insight, Connect
    "logistics": (2, 6, 1, 2, 2),
    "retail": (2, 4, 1, 5, 1),
    "food": (3, 5, 1, 2, 1),
    "industrial": (3, 4, 1, 2, 3),
    "lifesci": (2, 3, 5, 2, 1),
    "tech": (2, 0, 6, 3, 3),
    "finance": (4, 0, 6, 3, 1),
    "services": (5, 0, 3, 2, 3),
    "field": (3, 1, 1, 2, 6),
}
COMPETITORS = [
    ("Aldi", "Lidl"),
    ("Tesco", "Dunnes Stores Ireland"),
    ("Brown Thomas", "Arnotts"),
    ("Ryanair", "Aer Lingus"),
    ("KPMG", "Deloitte"),
    ("Arthur Cox", "McCann Fitzgerald"),
    ("Sisk Group", "Bam"),
    ("Vodafone", "Three"),
    ("ESB", "SSE Airtricity"),
]
OWNERS = [
    "aoife.byrne@example.com",
    "ciaran.walsh@example.com",
    "niamh.kelly@example.com",
    "darragh.murphy@example.com",
    "siobhan.ryan@example.com",
    "tomas.doyle@example.com",
]
FIRST_NAMES = [
    "Aisling",
    "Brendan",
    "Clodagh",
    "Declan",
    "Eimear",
    "Fergal",
    "Grainne",
    "Hugh",
    "Orla",
    "Padraig",
    "Roisin",
    "Sean",
]
LAST_NAMES = [
    "Brennan",
    "Connolly",
    "Dunne",
    "Fitzgerald",
    "Gallagher",
    "Kavanagh",
    "Lynch",
    "McCarthy",
    "Nolan",
    "Quinn",
    "Sheridan",
    "Whelan",
]
TITLES = {
    "Ledger": ["Chief Financial Officer", "Financial Controller", "Head of Finance Systems"],
    "Flow WMS": ["Head of Logistics", "Warehouse Operations Manager", "Supply Chain Director"],
    "Shield": ["Chief Information Security Officer", "IT Security Lead", "Head of IT"],
    "Insight": ["Head of Data and Analytics", "BI Manager", "Chief Data Officer"],
    "Connect": ["Field Service Director", "Head of Customer Operations", "Sales Operations Lead"],
}
REF_TYPES = ["call", "site_visit", "case_study", "logo", "mentoring", "peer_call"]
REF_POOL = {
    "adoption": ["call", "mentoring", "peer_call"],
    "value": ["call", "case_study", "logo", "mentoring", "peer_call"],
    "expansion": REF_TYPES,
}

# product | industry groups (* = any; @Category = reserved for a planted case) | topic |
# canonical statement | paraphrase | paraphrase
CATALOGUE = """
Ledger | * | month-end close | Month-end close in under 5 days | Close the books within five working days of month end | Cut the monthly financial close to less than five days
Ledger | * | group consolidation | Consolidate the accounts of 12 legal entities automatically | Automatic financial consolidation across twelve subsidiary companies | Consolidate the group accounts of a dozen legal entities without spreadsheets
Ledger | * | multi-currency | Run the ledger in euro and sterling with automatic revaluation | Multi-currency books in EUR and GBP with automatic FX revaluation | Keep the general ledger in both euro and sterling and revalue currency balances automatically
Ledger | * | VAT returns | Produce Irish and UK VAT returns straight from the ledger | File VAT returns for Revenue and HMRC directly from the finance system | Generate Irish and British VAT returns from the general ledger without manual workbooks
Ledger | * | AP automation | Automate supplier invoice capture and three-way matching | Stop keying purchase invoices by hand and match them to orders and receipts automatically | Automated accounts payable: scan supplier invoices and match them to purchase orders and goods receipts
Ledger | * | budgeting | Replace spreadsheet budgeting with driver-based forecasts | Move annual budgets and rolling forecasts out of Excel | Budget and forecast in the finance system instead of spreadsheets
Ledger | * | ERP migration | Migrate off a legacy on-premise ERP without disrupting trading | Replace an ageing on-premise ERP system with minimal business disruption | Move from a legacy on-prem ERP to the cloud while the business keeps trading
Ledger | * | audit readiness | Pass the statutory audit with a full audit trail and fewer adjustments | Give the statutory auditors a clean, fully traceable ledger | A finance audit trail that makes the year-end statutory audit quick with few adjustments
Ledger | * | cash visibility | Daily cash position across all bank accounts | See the cash balance of every bank account each morning | Daily visibility of cash across all of our bank accounts
Ledger | field | project costing | Track costs and margin per construction project | Job costing with committed costs and forecast margin for each construction contract | See the real cost and margin of every construction project as it progresses
Ledger | services | time billing | Bill client time and expenses from timesheets | Turn recorded timesheet hours into client invoices automatically | Invoice clients for time and expenses straight from staff timesheets
Ledger | food,retail,industrial | inventory valuation | Accurate stock valuation and cost of goods sold every month | Value inventory correctly and get reliable cost of sales in the monthly accounts | Reliable monthly inventory valuation and COGS without manual reconciliation
Ledger | finance | regulatory returns | Regulatory reporting to the Central Bank from one ledger | Produce Central Bank regulatory returns directly from the general ledger | Central Bank reporting fed from a single finance ledger
Ledger | lifesci,tech | R&D tax credit | Track spend eligible for the R&D tax credit | Capture qualifying research and development costs for the R&D tax credit claim | Tag R&D spend in the ledger so the tax credit claim is easy
Ledger | logistics | cost per route | Allocate fuel and toll costs to routes and customers | Charge fuel and road toll costs back to each route and client | Understand the cost of every delivery route including fuel and tolls
Flow WMS | * | warehouse consolidation | Consolidate six regional warehouses onto one WMS | Run all six regional depots on a single warehouse system | Bring several regional warehouses together on one warehouse management platform
Flow WMS | * | stock accuracy | Inventory accuracy above 99.5% with cycle counting | Replace the annual stock take with continuous cycle counts for accurate inventory | Keep warehouse inventory records accurate through cycle counting instead of a full stock count
Flow WMS | * | scanning | Paperless picking with handheld barcode scanners | Replace paper pick lists with handheld RF barcode scanning | Move warehouse pickers from printed pick lists to mobile barcode scanners
Flow WMS | * | labour planning | Measure picker productivity and plan warehouse shifts | Track warehouse picks per hour and plan staff shifts to demand | Warehouse labour planning based on measured picker productivity
Flow WMS | * | returns | Process customer returns and restock within 24 hours | Handle customer returns faster and put goods back into stock within a day | Returned goods checked and restocked within 24 hours
Flow WMS | * | customs | Handle customs paperwork for goods moving between Ireland and Great Britain | Post-Brexit customs declarations for shipments between Ireland and Britain | Produce customs documents for Irish and British shipments automatically
Flow WMS | retail,food | store stock visibility | Real-time stock visibility across stores | See live stock levels in every store | Know the current stock on hand in each shop in real time
Flow WMS | food,lifesci | lot traceability | Full batch and lot traceability for product recalls | Trace every batch and lot from supplier to customer within hours of a recall | Track product batches end to end so a recall can be run quickly
Flow WMS | food | FEFO picking | First-expiry-first-out picking for perishable goods | Pick chilled and perishable stock by expiry date, earliest first | First-expiry-first-out (FEFO) picking so perishable goods with the earliest expiry ship first
Flow WMS | logistics,retail | carrier labels | Book carriers and print shipping labels from the warehouse system | Integrate parcel carriers for shipping labels and tracking numbers | Automatic carrier booking, labels and tracking at dispatch
Flow WMS | retail | e-commerce fulfilment | Same-day fulfilment of online orders from the warehouse | Ship web orders from the warehouse on the day they are placed | Pick, pack and dispatch e-commerce orders the same day
Flow WMS | logistics | 3PL billing | Bill 3PL clients for storage and handling automatically | Automatically invoice each third-party logistics client for pallets stored and handled | Accurate storage and handling charges for our 3PL customers
Flow WMS | industrial | line-side supply | Supply production lines with components just in time | Replenish components to the production line from stores just in time | Just-in-time line-side replenishment of parts for the factory floor
Flow WMS | lifesci | GDP storage | Good Distribution Practice compliance for medicines storage | Meet GDP rules for storing and shipping pharmaceuticals | Compliant medicine warehousing with controlled storage and records
Flow WMS | logistics,food,retail | dock booking | Schedule inbound deliveries to dock doors | Dock appointment booking for inbound supplier deliveries | Book delivery slots at the warehouse dock doors so lorries do not queue
Shield | * | Azure AD SSO | Single sign-on with Azure AD for 3,000 staff | Let three thousand employees log in once with their Azure AD account | One single sign-on login for all applications through Azure Active Directory
Shield | * | MFA | Multi-factor authentication for all remote access | Require multi-factor authentication whenever staff connect remotely | Roll out multi-factor authentication (MFA) for all remote access to the VPN and cloud apps
Shield | * | GDPR audit trail | GDPR-compliant audit trail of data access | Log who accessed personal data and when, for GDPR | An audit trail of every access to customer personal data for GDPR compliance
Shield | * | joiners and leavers | Automate joiner, mover and leaver access changes from HR | Grant and revoke system access automatically when staff join, move or leave | Automatically change user access from the HR system when staff join, move or leave
Shield | * | privileged access | Control and record privileged administrator access | Vault administrator passwords and record privileged sessions | Privileged access management for admin accounts with session recording
Shield | * | access reviews | Quarterly access reviews signed off by managers | Managers review and certify their team's system access every quarter | Periodic user access review campaigns with manager sign-off
Shield | * | passwordless | Passwordless login with phones and security keys | Replace passwords with FIDO2 security keys and authenticator apps on phones | Move staff to passwordless sign-in using phones and hardware keys
Shield | * | contractor access | Give contractors time-limited access to a few systems | Temporary, limited system access for contractors and suppliers | Time-limited access for external contractors to a few systems, expiring automatically
Shield | * | ISO 27001 | Evidence for ISO 27001 certification | Pass the ISO 27001 certification audit on access management | Collect the access management evidence needed for ISO 27001 certification
Shield | * | acquisition identity | Merge the user directory of an acquired company in weeks | Bring an acquired company's users onto our identity platform quickly | Integrate the user accounts and directory of a company we acquired
Shield | finance | DORA | Meet DORA requirements for ICT access controls | Show the regulator that our ICT access controls comply with DORA | ICT access controls that meet the DORA requirements
Shield | lifesci | shared workstations | Fast user switching on shared clinical workstations | Tap-in badge login for clinical staff on shared workstations | Quick, secure user switching for nurses on shared clinical computers
Shield | tech | customer identity | Customer login with social accounts and consent management | Sign-in for our own customers with Google or Apple accounts and consent tracking | Customer identity management with social login and consent records
Shield | industrial,field | OT remote access | Secure remote access to plant control systems | Secure vendor remote access to factory PLC and SCADA control systems | Controlled remote maintenance access to operational technology and plant systems
Insight | * | KPI dashboards | One set of KPI dashboards the board trusts | A single trusted set of KPI dashboards for the board and management | Replace conflicting spreadsheets with one set of trusted KPI dashboards
Insight | * | self-service reporting | Self-service reporting for business users without SQL | Let business users build their own reports without SQL or IT help | Self-service drag-and-drop reporting so business users need no SQL
Insight | * | data warehouse | Bring ERP, CRM and web data into one cloud data warehouse | Centralise data from our ERP, CRM and website in a single cloud data warehouse | One analytics data warehouse fed by finance, sales and web data
Insight | * | operational dashboards | Near real-time operational dashboards refreshed every 15 minutes | Operational dashboards updated every few minutes during the day, not overnight | Live operations dashboards refreshed in near real time
Insight | * | mobile reports | Reports and dashboards on mobile for managers on the move | Dashboards that work on phones and tablets for managers away from their desks | Mobile access to KPI reports for managers on the road
Insight | * | data governance | Governed metric definitions and row-level security in reports | Shared, governed definitions of every metric, with row-level security on reports | Certified report datasets with consistent metric definitions and row-level permissions
Insight | * | management pack | Automate the weekly management reporting pack | Stop building the weekly management report by hand | Scheduled management and board reports produced automatically every week
Insight | retail | store league tables | Compare sales and margin across stores daily | Daily store league tables for sales and margin | See every morning which stores are over- or under-performing on sales and margin
Insight | retail,food | demand forecasting | Forecast demand by product and week to cut waste | Weekly product-level demand forecasts to reduce waste and overstock | Predict weekly demand for each product so less is thrown away
Insight | tech,finance | churn prediction | Predict which customers are about to churn | Spot customers likely to cancel before they churn | Customer churn prediction from usage and billing data
Insight | field | energy use | Track energy consumption per site | Monitor electricity and gas consumption at every site | Site-level energy consumption reporting to cut costs
Insight | lifesci,industrial | quality analytics | Analyse batch quality and deviations across plants | Trend quality deviations and batch yield across manufacturing plants | Manufacturing quality analytics on batch deviations and right-first-time by plant
Insight | logistics | OTIF | Measure on-time-in-full delivery by customer and route | On-time-in-full (OTIF) delivery reporting for every route and customer | Track delivery punctuality and completeness per customer and route
Insight | tech | marketing attribution | Attribute revenue to marketing campaigns | Know which marketing campaigns actually bring in revenue | Multi-touch revenue attribution across marketing campaigns and channels
Connect | * | mobile work orders | Mobile work orders for 200 field engineers | Send work orders with all the job details to field engineers' phones | Paperless mobile work orders for our field engineers
Connect | * | scheduling | Optimise field engineer scheduling and routes | Plan field technicians' schedules and routes to cut travel time | Automatic scheduling and dispatch of the nearest qualified field engineer
Connect | * | first-time fix | Raise the first-time fix rate above 85% | Increase our first-time fix rate to over 85% | Improve the first-time fix rate so engineers rarely need a second visit
Connect | * | SLA tracking | Track service level agreements for every contract | Track SLA compliance for every service contract and alert before a breach | Monitor the service level agreement response and fix times of every contract
Connect | * | single CRM | One CRM for the sales pipeline across all regions | Move every salesperson onto a single shared CRM pipeline | Replace regional customer spreadsheets with one CRM system and sales pipeline
Connect | * | customer portal | Customer portal to log and track service requests | Let customers raise service requests and follow their progress online | A self-service customer portal for logging and tracking service jobs
Connect | * | van stock | Manage spare parts stock in engineers' vans | Know which spare parts are stocked in each engineer's van | Van stock management so field technicians carry the parts they need
Connect | * | quoting | Produce quotes in minutes and convert them to orders | Faster sales quoting with approved price lists, converted straight to orders | Quote-to-order in minutes without retyping quotes into the ERP
Connect | * | offline mobile | Field service app that works offline in poor coverage | Engineers can use the mobile app without signal in rural areas | An offline-capable field app that syncs when coverage returns
Connect | field | preventive maintenance | Planned preventive maintenance for installed assets | Schedule preventive servicing of equipment before it fails | Planned maintenance schedules for every installed asset we look after
Connect | field | site safety | Digital risk assessments before work starts on site | Engineers complete site safety risk assessments on their phone before a job | Digital site risk assessments and safety checklists completed before work starts
Connect | tech,finance,services | customer 360 | A 360-degree view of each customer across sales and service | See every sales and service interaction with a customer in one place | One shared customer record across sales, service and billing
Connect | industrial | installed base | Track warranties and service contracts for machines we sell | Manage the installed base of machines with warranty and service contract dates | Know which customer machines are under warranty or a service contract
Connect | retail,food | key accounts | Manage key accounts and trade promotions with retailers | Plan trade promotions with each major retail customer | Key account plans and promotional calendars for big retail buyers
Flow WMS | @Transport | cross-docking | Cross-dock inbound pallets onto outbound trailers without putting them away | Move pallets from arriving lorries straight onto departing trailers without storing them | Cross-docking so inbound pallets go straight to outbound trailers, never into racking
Flow WMS | @Transport | returnable pallets | Track the reusable pallets and roll cages each customer owes us | Know how many returnable pallets and cages every client is holding | A ledger of returnable pallets and roll cages held by each customer
Flow WMS | @Transport | load sequencing | Load night-shift trailers in reverse order of the delivery drops | Sequence overnight trailer loading by delivery drop so the first drop comes off first | Plan night trailer loading around the order of the delivery drops
Shield | @Pharma | Part 11 e-signatures | Electronic signatures that comply with FDA 21 CFR Part 11 | Part 11 compliant e-signatures for approving batch records | FDA 21 CFR Part 11 electronic signing of GMP records
Shield | @Pharma | lab data integrity | Stop laboratory analysts from editing or deleting their own test results | Data-integrity controls so a lab analyst cannot alter test results they produced | Lab data integrity: analysts cannot change or delete their own test results
Shield | @Pharma | validated identity | A validation package so the identity platform passes a GMP inspection | Identity and access platform validated for GMP inspections | GMP computer system validation documents for our identity and access platform
Insight | @Retailing | loyalty baskets | Basket analysis by loyalty-card segment | Understand what loyalty card members buy together, by customer segment | Market-basket analytics split by loyalty-card segment
Insight | @Retailing | promotion uplift | Measure promotion uplift and cannibalisation within a day of a promotion ending | Know the day after a promotion whether it added sales or just took them from other lines | Next-day analysis of promotion uplift and cannibalisation
Insight | @Retailing | footfall conversion | Footfall-to-sales conversion by store and hour | Combine door-counter footfall with till data to see hourly sales conversion per store | Hourly store conversion rates from footfall counters and sales
Connect | @Construction | snag lists | Snag lists with photos signed off by the client at handover | Capture snags with photos on a tablet and get the client's sign-off at handover | Digital snag lists with photo evidence and client sign-off at project handover
Connect | @Construction | subcontractor dispatch | Dispatch subcontractor crews to sites from a mobile app | Send work packages to subcontractor crews' phones and see when they arrive on site | Coordinate and dispatch subcontracted crews to sites through a mobile app
Connect | @Construction | plant hire | Track hired plant and tools across sites and off-hire them on time | Know which hired plant and tools are on each site and return them before charges pile up | A plant-hire register per site with reminders to off-hire equipment on time
Ledger | @Food | landed cost | Landed cost of imported ingredients including freight, duty and currency | Work out the true cost of imported raw materials with shipping, duties and FX | Landed-cost accounting for ingredients bought abroad
Ledger | @Food | rebate accruals | Accrue supplier rebates and retailer promotional allowances accurately | Track the rebates we owe supermarkets and the ones suppliers owe us | Rebate and trade-spend accruals posted correctly every month
Insight | @Energy | wind forecasting | Forecast wind generation output by site a day ahead | Predict next-day power output from each wind farm | Day-ahead renewable generation forecasts per site
Insight | @Energy | settlement reconciliation | Reconcile metered volumes against market settlement statements | Check that the electricity we were paid for matches our metered volumes | Settlement reconciliation between meter reads and market statements
"""

# Every CSV column, REAL or GENERATED, with a note; rendered into README.md.
COLUMNS = {
    "accounts.csv": [
        ("external_id", "GENERATED", "`IE-` + an upper-case ASCII slug of the company name (stable, unique)"),
        ("name", "REAL", "source `Company`"),
        ("industry", "REAL", "source `Category` (25 sectors)"),
        ("employees", "REAL", 'source `Employees` parsed to an integer ("2,790" -> 2790); blank if not given'),
        (
            "country",
            "REAL",
            "`Ireland` for all (the source lists companies on the island of Ireland; a few are Northern Irish)",
        ),
        ("region", "GENERATED", "`EMEA` for all"),
        (
            "products",
            "GENERATED",
            "1-3 of the fictional vendor's products, correlated with industry; for prospects the products they evaluate",
        ),
        ("stage", "GENERATED", "prospect ~30%, onboarding ~12%, adoption ~18%, value ~22%, expansion ~18%"),
        ("stage_since", "GENERATED", "date the stage was entered, 2022-01-01..2026-10-31, later stages longer ago"),
        ("health", "GENERATED", "0-100 for customers (at-risk accounts 18-48); blank for prospects"),
        ("arr", "GENERATED", "EUR, scaled by employees and products; blank for prospects"),
        (
            "renewal_date",
            "GENERATED",
            "within a year after 2026-11-27 (sooner for at-risk accounts); blank for prospects and former customers",
        ),
        ("owner", "GENERATED", "one of six fictional reps at example.com"),
        (
            "profile",
            "GENERATED",
            "written by the script from the facts (name, sector, employees, country) and the generated products and needs; no source description text",
        ),
        ("do_not_match", "GENERATED", "competitor pairs chosen by this script (both directions)"),
    ],
    "needs.csv": [
        ("account_external_id", "GENERATED", "an account above"),
        ("need", "GENERATED", "a statement from the script's catalogue, in one of three wordings"),
        ("status", "GENERATED", "open / in_progress / met, by stage"),
        ("met_on", "GENERATED", "only on met needs, 2022-01-01..2026-10-31"),
        ("product", "GENERATED", "the product the need belongs to"),
    ],
    "advocates.csv": [
        ("account_external_id", "GENERATED", "~40% of adoption/value/expansion customers with health >= 60"),
        ("consent", "GENERATED", "`true` for ~85%"),
        ("reference_types", "GENERATED", "subset of call, site_visit, case_study, logo, mentoring, peer_call"),
        ("capacity_per_quarter", "GENERATED", "1-6"),
        ("contact_name", "GENERATED", "fictional person"),
        ("contact_title", "GENERATED", "fitting the advocate's main product"),
        ("contact_email", "GENERATED", "first.last@<company slug>.example (not a real address)"),
        ("blackout_until", "GENERATED", "blank for most; some past, some after 2026-11-27"),
        ("topics", "GENERATED", "short topics of the advocate's met needs"),
    ],
    "requests.csv": [
        (
            "seeker_external_id",
            "GENERATED",
            "a prospect (reference), a new deployment (mentor) or an at-risk customer (retention)",
        ),
        ("advocate_external_id", "GENERATED", "a consenting advocate that offers the reference type"),
        ("purpose", "GENERATED", "reference ~70%, mentor ~15%, retention ~15%"),
        ("reference_type", "GENERATED", "call, site_visit or case_study for references; mentoring; peer_call"),
        (
            "status",
            "GENERATED",
            "completed ~58%, declined ~14%, cancelled ~10%, scheduled / approved (never closed) ~6% each, requested (the open ones) the rest",
        ),
        ("requested_by", "GENERATED", "the demo users: sales for references, cs for mentors and retention"),
        ("created_at", "GENERATED", "2025-06-02..2026-08-20; the open ones in the week before 2026-11-27"),
        ("approved_at", "GENERATED", "1-5 days after the request, when approved"),
        ("scheduled_for", "GENERATED", "3-20 days after approval, when scheduled"),
        ("completed_at", "GENERATED", "on the scheduled day, when completed"),
        ("rating", "GENERATED", "1-5 on completed requests, mostly 4-5"),
        ("deal_outcome", "GENERATED", "won / lost / open on completed references (~60% won)"),
        ("influenced_arr", "GENERATED", "EUR on won deals, scaled by the prospect's employees"),
        ("note", "GENERATED", "a short reason, on declined and cancelled requests"),
    ],
    "signals.csv": [
        ("account_external_id", "GENERATED", "customers only"),
        (
            "observed_on",
            "GENERATED",
            "first of each month, the last 6-9 months up to 2026-11-01 (for former customers, up to the month they left)",
        ),
        ("kind", "GENERATED", "health, usage, open_tickets, escalation, nps, champion_left"),
        (
            "value",
            "GENERATED",
            "health 0-100; usage = % of licensed seats active that month; open_tickets a count; escalation 1 opened / 0 resolved; nps 0-10 (quarterly); champion_left 1. At-risk and most former customers slide into poor health and 1-2 more troubles (falling usage, support backlog, escalations) over their last months; about half of the consenting advocates had such an episode in the past and recovered",
        ),
    ],
    "churn.csv": [
        ("account_external_id", "GENERATED", f"{CHURN_COUNT} former customers (adopted, never advocates)"),
        ("churned_on", "GENERATED", f"the day they left, {CHURN_START}..{CHURN_END}"),
        ("reason", "GENERATED", "a short reason: " + ", ".join(CHURN_REASONS)),
    ],
}


def rng_for(seed, part):
    """A random.Random per section, so changing one section does not reshuffle the others."""
    return random.Random(int.from_bytes(hashlib.sha256(f"{seed}:{part}".encode()).digest()[:8], "big"))


def slug(text):
    ascii_text = unicodedata.normalize("NFKD", re.sub("['\u2019]", "", text)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def clean_text(text):
    text = " ".join(text.split())  # collapse all whitespace (incl. newlines, nbsp)
    text = re.sub(r"(?<=[a-z0-9)%\u2019\u201d])([.!?])(?=[A-Z])", r"\1 ", text)  # "in 1946.The"
    return re.sub(r"(?<=[A-Z&][A-Z])\.(?=[A-Z][a-z])", ". ", text)  # "the UK.It", "R&D.Almac"


def parse_employees(value):
    value = value.strip().replace(",", "")
    return int(value) if value.isdigit() else ""


def load_catalogue():
    needs = []
    for line in CATALOGUE.strip().splitlines():
        product, groups, topic, *variants = [part.strip() for part in line.split("|")]
        assert product in PRODUCTS and len(variants) == 3 and ";" not in line, line
        case = groups[1:] if groups.startswith("@") else None
        needs.append(
            {
                "key": f"{product}: {topic}",
                "product": product,
                "topic": topic,
                "groups": [] if case else groups.split(","),
                "case": case,
                "variants": variants,
            }
        )
    assert len({n["key"] for n in needs}) == len(needs)
    return needs


def iso(day):
    return day.isoformat() if day else ""


def add_days(rng, start, lo, hi):
    return start + dt.timedelta(days=rng.randint(lo, hi))


def load_accounts(source):
    with open(source, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    accounts = {}
    for row in rows:
        name = clean_text(row["Company"])
        if not clean_text(row["Description"]):  # the same companies as ever; the text itself is never used
            continue
        ext_id = "IE-" + slug(name).upper()
        while ext_id in accounts:
            ext_id += "-X"
        accounts[ext_id] = {
            "external_id": ext_id,
            "name": name,
            "industry": row["Category"].strip(),
            "employees": parse_employees(row["Employees"]),
            "country": "Ireland",
            "region": "EMEA",
            "slug": slug(name),
            "do_not_match": [],
            "at_risk": False,
        }
    return [accounts[k] for k in sorted(accounts)]


def pick_products(rng, group, count):
    names, weights = list(PRODUCTS), list(PRODUCT_WEIGHTS[group])
    chosen = []
    for _ in range(count):
        pick = rng.choices(names, weights)[0]
        chosen.append(pick)
        weights[names.index(pick)] = 0
    return [p for p in PRODUCTS if p in chosen]


def assign_accounts(accounts, seed):
    rng = rng_for(seed, "accounts")
    order = list(accounts)
    rng.shuffle(order)
    counts = {s: round(len(order) * STAGE_SHARE[s]) for s in STAGES}
    counts["value"] += len(order) - sum(counts.values())
    stages = [s for s in STAGES for _ in range(counts[s])]
    for acc, stage in zip(order, stages):
        acc["stage"] = stage
    for acc in accounts:
        stage, group = acc["stage"], GROUP[acc["industry"]]
        acc["stage_since"] = max(DATA_START, DATA_END - dt.timedelta(days=rng.randint(*STAGE_AGE_DAYS[stage])))
        count = rng.choices([1, 2], [7, 3])[0] if stage == "prospect" else rng.choices([1, 2, 3], [45, 35, 20])[0]
        acc["products"] = pick_products(rng, group, count)
        acc["owner"] = rng.choice(OWNERS)
        acc["health"] = "" if stage == "prospect" else min(98, max(55, round(rng.gauss(HEALTH_MEAN[stage], 9))))
    by_name = {a["name"]: a for a in accounts}
    for left, right in COMPETITORS:
        if left in by_name and right in by_name:
            by_name[left]["do_not_match"].append(by_name[right]["external_id"])
            by_name[right]["do_not_match"].append(by_name[left]["external_id"])


def plant_cases(accounts, catalogue, seed):
    """Choose a prospect and an advocate per planted case; return the cases."""
    rng = rng_for(seed, "planted")
    cases, used = [], set()
    for industry in sorted({n["case"] for n in catalogue if n["case"]}):
        needs = [n for n in catalogue if n["case"] == industry]
        product = needs[0]["product"]
        pool = [
            a for a in accounts if a["industry"] == industry and not a["do_not_match"] and a["external_id"] not in used
        ]
        seeker = rng.choice([a for a in pool if a["stage"] == "prospect"])
        advocate = rng.choice([a for a in pool if a["stage"] in ("value", "expansion")])
        used.update([seeker["external_id"], advocate["external_id"]])
        seeker["products"] = [product]
        if product not in advocate["products"]:
            advocate["products"] = [p for p in PRODUCTS if p in advocate["products"][:2] + [product]]
        advocate["health"] = max(advocate["health"], rng.randint(78, 92))
        seeker["planted"], advocate["planted"] = needs, needs
        cases.append({"seeker": seeker, "advocate": advocate, "product": product, "needs": needs})
    return cases


def finish_accounts(accounts, seed):
    """At-risk selection, ARR and renewal dates."""
    rng = rng_for(seed, "risk")
    customers = [a for a in accounts if a["stage"] != "prospect"]
    candidates = [a for a in customers if not a.get("planted")]
    for acc in rng.sample(candidates, round(len(customers) * AT_RISK_SHARE)):
        acc["at_risk"], acc["health"] = True, rng.randint(18, 48)
    for acc in accounts:
        if acc["stage"] == "prospect":
            acc["arr"] = acc["renewal_date"] = ""
            continue
        staff = acc["employees"] if acc["employees"] != "" else rng.randint(100, 2000)
        bump = 1.25 if acc["stage"] == "expansion" else 1.0
        acc["arr"] = int(
            round(len(acc["products"]) * (6000 + 28 * min(staff, 10000)) * rng.uniform(0.7, 1.3) * bump, -2)
        )
        acc["renewal_date"] = add_days(rng, TODAY, 20, 120) if acc["at_risk"] else add_days(rng, TODAY, 7, 365)


def met_date(rng, acc):
    start = max(DATA_START, acc["stage_since"] - dt.timedelta(days=0 if acc["stage"] == "onboarding" else 120))
    return add_days(rng, start, 0, (DATA_END - start).days)


def make_needs(accounts, catalogue, seed):
    rng = rng_for(seed, "needs")
    general = [n for n in catalogue if not n["case"]]
    rows = []
    for acc in accounts:
        group, stage = GROUP[acc["industry"]], acc["stage"]
        planted = acc.get("planted")
        if planted and stage == "prospect":  # seeker: exactly the reserved needs, open
            for need in planted:
                rows.append([acc, need, need["variants"][0], rng.choice(["open", "open", "in_progress"]), None])
            continue
        pool = [n for n in general if n["product"] in acc["products"] and ("*" in n["groups"] or group in n["groups"])]
        count = rng.randint(*NEED_COUNT[stage]) - len(planted or [])  # at most 6 with the planted ones
        chosen = rng.sample(pool, min(len(pool), max(1, count)))
        p_met, p_progress = NEED_STATUS["at_risk" if acc["at_risk"] else stage] if stage != "prospect" else (0, 0.3)
        for i, need in enumerate(chosen):
            roll = rng.random()
            status = "met" if roll < p_met else "in_progress" if roll < p_met + p_progress else "open"
            if acc["at_risk"] and i < 2:
                status = rng.choice(["open", "in_progress"])  # at-risk accounts have open problems
            if status == "met":
                text = need["variants"][rng.choices([2, 1], [85, 15])[0]]
                rows.append([acc, need, text, status, met_date(rng, acc)])
            else:
                rows.append([acc, need, need["variants"][rng.choices([0, 1], [8, 2])[0]], status, None])
        for need in planted or []:  # planted advocate: every reserved need met, paraphrased
            rows.append([acc, need, need["variants"][2], "met", met_date(rng, acc)])
    return rows


def make_advocates(accounts, need_rows, seed):
    rng = rng_for(seed, "advocates")
    met = {}
    for acc, need, _text, status, _ in need_rows:
        if status == "met" and need["topic"] not in met.setdefault(acc["external_id"], []):
            met[acc["external_id"]].append(need["topic"])
    pool = [a for a in accounts if a["stage"] in REF_POOL and a["health"] >= 60]
    planted = [a for a in pool if a.get("planted")]
    others = [a for a in pool if not a.get("planted")]
    chosen = planted + rng.sample(others, round(len(pool) * ADVOCATE_SHARE) - len(planted))
    rows = []
    for acc in sorted(chosen, key=lambda a: a["external_id"]):
        types = rng.sample(REF_POOL[acc["stage"]], rng.randint(1, min(4, len(REF_POOL[acc["stage"]]))))
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        consent, capacity = rng.random() < 0.85, rng.randint(1, 6)
        roll, blackout = rng.random(), None
        if roll < 0.08:
            blackout = add_days(rng, TODAY, 10, 120)
        elif roll < 0.20:
            blackout = add_days(rng, TODAY, -300, -10)
        if acc.get("planted"):
            consent, capacity, blackout = True, max(capacity, 3), None
            types = types if "call" in types else types + ["call"]
        product = acc["products"][0] if not acc.get("planted") else acc["planted"][0]["product"]
        topics = met.get(acc["external_id"], [])[-3:] or [f"{product} roll-out"]
        rows.append(
            {
                "account_external_id": acc["external_id"],
                "consent": "true" if consent else "false",
                "reference_types": ";".join(t for t in REF_TYPES if t in types),
                "capacity_per_quarter": capacity,
                "contact_name": f"{first} {last}",
                "contact_title": rng.choice(TITLES[product]),
                "contact_email": f"{first}.{last}@{acc['slug']}.example".lower(),
                "blackout_until": iso(blackout),
                "topics": ", ".join(topics),
            }
        )
    return rows


def months_back(count, end=SIGNALS_END):
    year, month, out = end.year, end.month, []
    for _ in range(count):
        out.append(dt.date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def _some_troubles(rng, must):
    """``must`` and one or two more of TROUBLES, in their order."""
    extra = [t for t in TROUBLES if t != must]
    chosen = {must, *rng.sample(extra, rng.randint(1, 2))}
    return [t for t in TROUBLES if t in chosen]


def pick_churn(accounts, advocates, seed):
    """Former customers: adopted customers (never advocates, at risk now or planted) who left in 2026.
    Most showed warning signs first (a subset of TROUBLES); a quarter left without any."""
    rng = rng_for(seed, "churn")
    advocating = {v["account_external_id"] for v in advocates}
    pool = [a for a in accounts if a["stage"] in ("adoption", "value", "expansion") and not a["at_risk"]
            and not a.get("planted") and a["external_id"] not in advocating]  # fmt: skip
    rows = []
    for acc in sorted(rng.sample(pool, CHURN_COUNT), key=lambda a: a["external_id"]):
        acc["churned_on"] = CHURN_START + dt.timedelta(days=rng.randrange((CHURN_END - CHURN_START).days))
        acc["troubles"] = [] if rng.random() < 0.25 else _some_troubles(rng, "poor health")
        if acc["troubles"]:
            acc["health"] = rng.randint(22, 46)
        acc["renewal_date"] = ""  # they left: nothing to renew
        rows.append({"account_external_id": acc["external_id"], "churned_on": iso(acc["churned_on"]),
                     "reason": rng.choice(CHURN_REASONS)})  # fmt: skip
    return rows


def _trouble_curve(rng, acc, n, recovered):
    """How bad things were each month, 0 (fine) to 1 (worst), and which troubles they were."""
    if acc["at_risk"] or acc.get("churned_on"):
        troubles = acc.setdefault("troubles", _some_troubles(rng, "poor health"))
        ramp = max(1, min(n - 1, rng.randint(3, 4)))  # things went wrong over the last few months
        return [max(0.0, 1 - (n - 1 - i) / ramp) if troubles else 0.0 for i in range(n)], troubles
    if recovered and n >= 8:  # an episode in the past, overcome: worst for two months, better two months on
        troubles = _some_troubles(rng, rng.choice(["falling usage", "poor health"]))
        start = rng.randint(1, n - 7)
        shape = {start: 0.5, start + 1: 1.0, start + 2: 1.0, start + 3: 0.4}
        return [shape.get(i, 0.0) for i in range(n)], troubles
    return [0.0] * n, []


def make_signals(accounts, advocates, seed):
    """Monthly health, usage, open tickets, escalations, quarterly NPS and champion changes for customers: a
    steady run for most, a slide into their troubles for at-risk and former customers, and for about half of
    the consenting advocates an episode of trouble they have overcome (the peer saves retention matching needs)."""
    rng = rng_for(seed, "signals")
    willing = {v["account_external_id"] for v in advocates if v["consent"] == "true"}
    rows = []
    for acc in accounts:
        if acc["stage"] == "prospect":
            continue
        churned = acc.get("churned_on")
        days = months_back(rng.randint(6, 9), dt.date(churned.year, churned.month, 1) if churned else SIGNALS_END)
        if acc["stage"] == "onboarding":  # no usage data before the deployment started
            days = [d for d in days if d >= acc["stage_since"]] or days[-1:]
        n = len(days)
        recovered = acc["external_id"] in willing and rng.random() < RECOVERY_SHARE
        curve, troubles = _trouble_curve(rng, acc, n, recovered)
        sliding = bool(troubles) and curve[-1] > 0  # in trouble at the end of the record
        end_health = acc["health"]
        base_health = rng.randint(68, 85) if sliding else end_health
        low_health = end_health if sliding else rng.randint(34, 46)
        usage0 = rng.randint(60, 88)
        champion_month = (
            n - 1 - rng.randint(0, min(2, n - 1))
            if sliding and rng.random() < 0.45
            else rng.randrange(n)
            if rng.random() < 0.02
            else None
        )
        escalation_open = False
        for i, day in enumerate(days):
            x = curve[i]
            if "poor health" in troubles:
                health = base_health - (base_health - low_health) * x + rng.randint(-3, 3)
            else:
                health = base_health + rng.randint(-6, 6)
            if i == n - 1:
                health = end_health
            usage = usage0 * (1 - 0.55 * x if "falling usage" in troubles else 1) + rng.randint(-4, 4)
            if "support backlog" in troubles and x > 0:
                tickets = round(2 + 8 * x) + rng.randint(0, 2)
            else:
                tickets = rng.choices(range(6), [35, 30, 18, 10, 5, 2])[0]
            obs = [("health", min(100, max(0, round(health)))), ("usage", min(100, max(0, round(usage)))),
                   ("open_tickets", tickets)]  # fmt: skip
            if "escalations" in troubles and x > 0:
                opens = x >= 0.5
            else:
                opens = i < n - 1 and rng.random() < 0.05
            if opens != escalation_open:  # 1 when an escalation opens, 0 when it is resolved
                obs.append(("escalation", int(opens)))
                escalation_open = opens
            if day.month in (2, 5, 8, 11):
                nps = rng.randint(0, 5) if x >= 0.5 else rng.choices(range(11), [1, 1, 1, 1, 2, 3, 5, 10, 14, 12, 8])[0]
                obs.append(("nps", nps))
            if i == champion_month:
                obs.append(("champion_left", 1))
            rows += [
                {"account_external_id": acc["external_id"], "observed_on": iso(day), "kind": k, "value": v}
                for k, v in obs
            ]
    return rows


def _listing(items):
    items = list(dict.fromkeys(items))
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def write_profiles(accounts, need_rows, seed):
    """Each account's profile, written from its facts (name, sector, size, country) and its generated products
    and needs: no text of the source's descriptions is used (their publisher granted no licence)."""
    rng = rng_for(seed, "profiles")
    topics = {}
    for acc, need, _text, status, _ in need_rows:
        topics.setdefault(acc["external_id"], {}).setdefault("met" if status == "met" else "open", []).append(
            need["topic"]
        )
    for acc in accounts:
        sector = SECTOR[acc["industry"]]
        article = "an" if sector[0] in "aeiou" else "a"
        staff = f"{acc['employees']:,} employees" if acc["employees"] != "" else ""
        opening = rng.choice(
            [
                f"{acc['name']} is {article} {sector} in Ireland" + (f" with {staff}." if staff else "."),
                f"Based in Ireland, {acc['name']} is {article} {sector}" + (f" with {staff}." if staff else "."),
                f"{acc['name']}: {article} {sector} in Ireland" + (f", {staff}." if staff else "."),
            ]
        )
        uses = _listing(f"{p} for {PRODUCTS[p]}" for p in acc["products"])
        mine = topics.get(acc["external_id"], {})
        if acc["stage"] == "prospect":
            parts = [opening, f"It is evaluating {uses}."]
            if mine.get("open"):
                parts.append(f"It wants help with {_listing(mine['open'])}.")
        else:
            doing = {"onboarding": "is rolling out", "expansion": "runs and is extending"}.get(acc["stage"], "runs")
            parts = [opening, f"It {doing} {uses}."]
            if mine.get("met"):
                parts.append(f"Already in place: {_listing(mine['met'])}.")
            if mine.get("open"):
                parts.append(f"Working on {_listing(mine['open'])}.")
        acc["profile"] = " ".join(parts)


def _stamp(day, rng, hour_lo=8, hour_hi=18):
    return f"{iso(day)}T{rng.randint(hour_lo, hour_hi - 1):02d}:{rng.randint(0, 59):02d}:00+00:00"


def make_history(accounts, advocates, seed):
    """Past reference requests in every state, with outcomes, over five quarters, and a few open ones."""
    rng = rng_for(seed, "history")
    by_id = {a["external_id"]: a for a in accounts}
    willing = [v for v in advocates if v["consent"] == "true"]
    pools = {
        "reference": [a for a in accounts if a["stage"] == "prospect"],
        "mentor": [a for a in accounts if a["stage"] == "onboarding"],
        "retention": [a for a in accounts if a["at_risk"]],
    }
    types = {"reference": ["call", "site_visit", "case_study"], "mentor": ["mentoring"], "retention": ["peer_call"]}
    span = (HISTORY_END - HISTORY_START).days
    rows = []
    for i in range(HISTORY_COUNT + OPEN_COUNT):
        purpose = rng.choices(["reference", "mentor", "retention"], [70, 15, 15])[0]
        ref_type = rng.choices(types[purpose], [6, 2, 2][: len(types[purpose])])[0]
        seeker = rng.choice(pools[purpose])
        offered = [v for v in willing if ref_type in v["reference_types"].split(";")
                   and v["account_external_id"] != seeker["external_id"]]  # fmt: skip
        advocate = rng.choice(offered)
        is_open = i >= HISTORY_COUNT
        created = (
            TODAY - dt.timedelta(days=rng.randint(4, 8))
            if is_open
            else HISTORY_START + dt.timedelta(days=rng.randrange(span))
        )
        status = "requested" if is_open else rng.choices(
            ["completed", "declined", "cancelled", "scheduled", "approved"], [58, 14, 10, 6, 6])[0]  # fmt: skip
        row = {
            "seeker_external_id": seeker["external_id"],
            "advocate_external_id": advocate["account_external_id"],
            "purpose": purpose,
            "reference_type": ref_type,
            "status": status,
            "requested_by": "sales" if purpose == "reference" else "cs",
            "created_at": _stamp(created, rng),
            "approved_at": "",
            "scheduled_for": "",
            "completed_at": "",
            "rating": "",
            "deal_outcome": "",
            "influenced_arr": "",
            "note": "",
        }
        if status in ("approved", "scheduled", "completed") or (status == "cancelled" and rng.random() < 0.5):
            approved = created + dt.timedelta(days=rng.randint(1, 5))
            row["approved_at"] = _stamp(approved, rng)
            if status in ("scheduled", "completed"):
                meeting = approved + dt.timedelta(days=rng.randint(3, 20))
                row["scheduled_for"] = iso(meeting)
                if status == "completed":
                    row["completed_at"] = _stamp(meeting, rng, 9, 17)
                    row["rating"] = rng.choices([1, 2, 3, 4, 5], [2, 4, 14, 40, 40])[0]
                    if purpose == "reference":
                        outcome = rng.choices(["won", "lost", "open"], [60, 30, 10])[0]
                        row["deal_outcome"] = outcome
                        if outcome == "won":
                            size = by_id[seeker["external_id"]]["employees"] or 100
                            row["influenced_arr"] = int(
                                min(400_000, max(8_000, size * rng.randint(40, 120))) // 500 * 500
                            )
        if status == "declined":
            row["note"] = rng.choice(["advocate on holiday", "too many calls this quarter", "not the right fit",
                                      "advocate changing roles"])  # fmt: skip
        elif status == "cancelled":
            row["note"] = rng.choice(["deal went quiet", "prospect chose a competitor", "asked elsewhere"])
        rows.append(row)
    rows.sort(key=lambda r: (r["created_at"], r["advocate_external_id"]))
    return rows


def to_csv(columns, rows):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def render_readme(seed, source_sha, counts, cases):
    lines = [
        "# refmatch demo dataset",
        "",
        "A fictional B2B software vendor's customer base, built on real Irish companies. "
        "Generated by `scripts/make_demo_data.py`; do not edit by hand.",
        "",
        "## Provenance and attribution",
        "",
        "Company names, industries and employee counts come from the "
        "**Irish Times Top 1000 companies spreadsheet by Alice Corona (github.com/ali-ce/datasets), "
        "CC BY-SA 4.0** (file `irish_times_top1000_companies.csv`, sha256 "
        f"`{source_sha}`). The data was **modified**: rows without a description were dropped (so the "
        "companies are those the source describes), only three source columns were kept (Company, "
        "Category, Employees), the employee counts were parsed to integers, and generated fields were "
        "added. These derived files are released under CC BY-SA 4.0; see `LICENSE.txt`.",
        "",
        "The profile texts are **written by the script** from those facts (name, sector, size, country) "
        "and the generated products and needs. No text of the source's `Description` column is used: "
        "those descriptions most likely come from the Irish Times Top 1000 profiles (top1000.ie), "
        "whose publisher granted no licence of its own. So the dataset can be published and shipped.",
        "",
        "Everything marked GENERATED is fictional: the vendor, its products, stages, needs, "
        "advocates, contacts and signals say nothing about the real companies. Contact "
        "e-mails use the reserved `.example` top-level domain. The shape of the risk signals "
        "(about 5% of months with an escalation, about 12% of customers at risk) was chosen "
        "with the synthetic RavenStack SaaS dataset (MIT) in mind; no RavenStack rows are used.",
        "",
        "## The vendor's products",
        "",
        "| product | area |",
        "|---|---|",
    ]
    lines += [f"| {p} | {area} |" for p, area in PRODUCTS.items()]
    lines += ["", "## Files", "", "| file | rows |", "|---|---|"]
    lines += [f"| `{name}` | {count} |" for name, count in counts.items()]
    lines += ["", "## Columns: REAL or GENERATED", "", "| file | column | source | notes |", "|---|---|---|---|"]
    for name, columns in COLUMNS.items():
        lines += [f"| {name} | `{col}` | {kind} | {note} |" for col, kind, note in columns]
    lines += [
        "",
        "Lists are `;`-separated; dates are ISO `YYYY-MM-DD`; empty cells mean not known. "
        '"Today" for this dataset is 2026-11-27; stage and need dates end on 2026-10-31, '
        "signals on 2026-11-01.",
        "",
        "## Planted evaluation cases (`known_matches.json`)",
        "",
        "For each case the prospect's open needs are met, in different words, by exactly one "
        "advocate (consenting, accepts calls, capacity >= 3, no blackout, value or expansion "
        "stage, health >= 75, same industry, owns the product). The needs come from a reserved "
        "part of the catalogue that no other account has, so an end-to-end test can assert "
        "that matching ranks the advocate in the prospect's top 3 for `reference`.",
        "",
    ]
    lines += [
        f"- `{c['seeker']['external_id']}` -> `{c['advocate']['external_id']}` "
        f"({c['seeker']['industry']}, {c['product']})"
        for c in cases
    ]
    lines += [
        "",
        "## Regenerate",
        "",
        "```",
        f"python3 scripts/make_demo_data.py --seed {seed} --out refmatch/demo_data",
        "```",
        "",
        f"Seed: {seed}. The output is deterministic: the same seed and source give "
        "byte-identical files (`tests/test_demo_data.py` checks this).",
        "",
    ]
    return "\n".join(lines)


def render_license(source_licence):
    return "\n".join(
        [
            "refmatch demo dataset (refmatch/demo_data) -- licence and attribution",
            "",
            'The files in this folder are derived from the "Irish Times Top 1000 companies spreadsheet by',
            'Alice Corona (github.com/ali-ce/datasets), CC BY-SA 4.0".',
            "",
            "Changes made (the data was MODIFIED): rows without a description were removed; only the",
            "Company, Category and Employees columns were kept (as name, industry, employees); employee",
            "counts were parsed to integers; no text of the Description column is used (the profile texts",
            "are written from the facts and the generated fields); and fictional, generated fields were added",
            "(external ids, products, stages, dates, health, ARR, owners, competitor exclusions, profiles,",
            "needs, advocates, contacts, signals, churn, request history, evaluation cases) by",
            "scripts/make_demo_data.py.",
            "",
            "These derived files are licensed under the Creative Commons Attribution-ShareAlike 4.0",
            "International licence (CC BY-SA 4.0): https://creativecommons.org/licenses/by-sa/4.0/",
            "(legal code: https://creativecommons.org/licenses/by-sa/4.0/legalcode).",
            "",
            "Source licence and provenance record, verbatim:",
            "",
            "-" * 72,
            source_licence.rstrip("\n"),
            "-" * 72,
            "",
        ]
    )


def generate(seed, source):
    catalogue = load_catalogue()
    accounts = load_accounts(source)
    assign_accounts(accounts, seed)
    cases = plant_cases(accounts, catalogue, seed)
    finish_accounts(accounts, seed)
    need_rows = make_needs(accounts, catalogue, seed)
    advocates = make_advocates(accounts, need_rows, seed)
    churn = pick_churn(accounts, advocates, seed)
    write_profiles(accounts, need_rows, seed)
    signals = make_signals(accounts, advocates, seed)
    history = make_history(accounts, advocates, seed)
    account_rows = [
        {
            "external_id": a["external_id"],
            "name": a["name"],
            "industry": a["industry"],
            "employees": a["employees"],
            "country": a["country"],
            "region": a["region"],
            "products": ";".join(a["products"]),
            "stage": a["stage"],
            "stage_since": iso(a["stage_since"]),
            "health": a["health"],
            "arr": a["arr"],
            "renewal_date": iso(a["renewal_date"]),
            "owner": a["owner"],
            "profile": a["profile"],
            "do_not_match": ";".join(sorted(a["do_not_match"])),
        }
        for a in accounts
    ]
    needs = [
        {
            "account_external_id": acc["external_id"],
            "need": text,
            "status": status,
            "met_on": iso(met_on),
            "product": need["product"],
        }
        for acc, need, text, status, met_on in need_rows
    ]
    matches = [
        {
            "seeker": c["seeker"]["external_id"],
            "advocate": c["advocate"]["external_id"],
            "purpose": "reference",
            "product": c["product"],
            "why": (
                f"Same industry ({c['seeker']['industry']}); the advocate is live on {c['product']} "
                f"({c['advocate']['stage']} since {iso(c['advocate']['stage_since'])}, health "
                f"{c['advocate']['health']}) and has met all {len(c['needs'])} of the prospect's open "
                "needs: " + ", ".join(n["topic"] for n in c["needs"]) + "."
            ),
        }
        for c in cases
    ]
    files = {
        "accounts.csv": to_csv([c for c, _, _ in COLUMNS["accounts.csv"]], account_rows),
        "needs.csv": to_csv([c for c, _, _ in COLUMNS["needs.csv"]], needs),
        "advocates.csv": to_csv([c for c, _, _ in COLUMNS["advocates.csv"]], advocates),
        "signals.csv": to_csv([c for c, _, _ in COLUMNS["signals.csv"]], signals),
        "churn.csv": to_csv([c for c, _, _ in COLUMNS["churn.csv"]], churn),
        "requests.csv": to_csv([c for c, _, _ in COLUMNS["requests.csv"]], history),
        "known_matches.json": json.dumps(matches, indent=2, ensure_ascii=False) + "\n",
    }
    counts = {
        name: len(rows)
        for name, rows in [
            ("accounts.csv", account_rows),
            ("needs.csv", needs),
            ("advocates.csv", advocates),
            ("signals.csv", signals),
            ("churn.csv", churn),
            ("requests.csv", history),
            ("known_matches.json", matches),
        ]
    }
    source_sha = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    files["README.md"] = render_readme(seed, source_sha, counts, cases)
    licence = Path(source).with_name(SOURCE_NAME.replace(".csv", ".LICENSE.txt"))
    files["LICENSE.txt"] = render_license(licence.read_text(encoding="utf-8"))
    return files


def validate(files):
    """Check the generated files against the import formats; raise AssertionError if not."""

    def rows(name):
        return list(csv.DictReader(io.StringIO(files[name])))

    def is_date(value, lo=DATA_START, hi=dt.date(2027, 12, 31)):
        return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)) and lo <= dt.date.fromisoformat(value) <= hi

    accounts = rows("accounts.csv")
    ids = {a["external_id"] for a in accounts}
    assert len(ids) == len(accounts), "external_id not unique"
    for a in accounts:
        assert a["stage"] in STAGES and is_date(a["stage_since"], hi=DATA_END), a
        assert a["employees"] == "" or a["employees"].isdigit(), a
        assert (a["health"] == "") == (a["stage"] == "prospect") and (
            a["health"] == "" or 0 <= int(a["health"]) <= 100
        ), a
        assert a["renewal_date"] == "" or is_date(a["renewal_date"], lo=TODAY), a
        assert all(p in PRODUCTS for p in a["products"].split(";")), a
        assert all(x in ids and x != a["external_id"] for x in filter(None, a["do_not_match"].split(";"))), a
    for n in rows("needs.csv"):
        assert n["account_external_id"] in ids and n["status"] in ("open", "in_progress", "met"), n
        assert (n["met_on"] != "") == (n["status"] == "met") and (
            not n["met_on"] or is_date(n["met_on"], hi=DATA_END)
        ), n
    for a in rows("advocates.csv"):
        assert a["account_external_id"] in ids and a["consent"] in ("true", "false"), a
        assert all(t in REF_TYPES for t in a["reference_types"].split(";")) and ";" not in a["topics"], a
        assert 1 <= int(a["capacity_per_quarter"]) <= 6 and (not a["blackout_until"] or is_date(a["blackout_until"])), a
    churn = {c["account_external_id"]: c for c in rows("churn.csv")}
    for c in churn.values():
        assert c["account_external_id"] in ids and is_date(c["churned_on"], lo=CHURN_START, hi=CHURN_END), c
        assert c["account_external_id"] not in {v["account_external_id"] for v in rows("advocates.csv")}, c
    for s in rows("signals.csv"):
        assert s["account_external_id"] in ids and is_date(s["observed_on"], hi=SIGNALS_END), s
        assert s["value"].isdigit() and (s["kind"] not in ("health", "usage") or int(s["value"]) <= 100), s
    advocates = {a["account_external_id"]: a for a in rows("advocates.csv")}
    for r in rows("requests.csv"):
        assert r["seeker_external_id"] in ids and r["advocate_external_id"] in advocates, r
        assert r["reference_type"] in advocates[r["advocate_external_id"]]["reference_types"].split(";"), r
        assert r["status"] in ("requested", "approved", "scheduled", "completed", "declined", "cancelled"), r
        assert (r["completed_at"] != "") == (r["status"] == "completed") and r["created_at"] < TODAY.isoformat(), r
        assert r["status"] == "requested" or r["created_at"] < HISTORY_END.isoformat() + "T23", r


def find_source():
    for folder in SOURCE_DIRS:
        if (folder / SOURCE_NAME).exists():
            return folder / SOURCE_NAME
    raise SystemExit(f"{SOURCE_NAME} not found in {', '.join(map(str, SOURCE_DIRS))}; use --source")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--out", type=Path, default=REPO / "refmatch" / "demo_data", help="output folder")
    parser.add_argument("--source", type=Path, help=f"path to {SOURCE_NAME}")
    args = parser.parse_args(argv)
    files = generate(args.seed, args.source or find_source())
    validate(files)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        (args.out / name).write_bytes(files[name].encode("utf-8"))
    print(f"wrote {len(FILES)} files to {args.out}")


if __name__ == "__main__":
    main()
